"""usage rollups: daily rollups of the ledger, maintained inside `tollgate_settle` in the same
transaction as the ledger row they count.

* `usage_daily`: per (tenant, UTC day, key, end user, model): for reports that filter or group
  by model or key;
* `usage_daily_users`: per (tenant, UTC day, end user): a month of it is a few ten thousand
  rows, so reports by tenant, end user or day over all models and keys stay fast.

Reports read whole days from a rollup and only the partial days at the edges of a `from`/`to`
window from the ledger. The ledger stays the source of truth; the rollups equal it exactly:

* a settle of an `in_flight` row adds the row (requests + 1, its tokens and cost);
* a settle of an `abandoned` row (a spooled settlement replayed after the reaper gave up on the
  request) takes back what the abandonment added, then adds the real numbers: the request still
  counts once (and moves to the real model if that differs);
* anything else is refused by `tollgate_settle` before the rollups are touched (a replay).

`tollgate_settle` keeps its behaviour otherwise, unchanged; downgrade restores its old body.
Upgrading fills the rollups from the ledger's final rows, holding the ledger in SHARE mode so no
settle can slip between the backfill and the new function (settles wait for the backfill).

Revision ID: e5f7a9b1c3d5
Revises: f6a8b0c2d4e6
Create Date: 2026-11-20 23:30:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "e5f7a9b1c3d5"
down_revision: str | None = "f6a8b0c2d4e6"  # after billing (linear history)
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SETTLE_SIGNATURE = (
    "tollgate_settle(uuid, text, text, bigint, bigint, bigint, bigint, bigint, bigint, "
    "numeric, text, timestamptz, timestamptz, text, integer, text)"
)

SETTLE_WITH_ROLLUP = r"""
CREATE OR REPLACE FUNCTION tollgate_settle(
    p_id uuid, p_status text, p_model text, p_input bigint, p_output bigint,
    p_cw5m bigint, p_cw1h bigint, p_cread bigint, p_web bigint, p_cost numeric,
    p_price_version text, p_first_token_at timestamptz, p_ended_at timestamptz,
    p_upstream_request_id text, p_http_status integer, p_error_type text)
RETURNS boolean
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    row record;
    was_in_flight boolean;
    row_day date;
BEGIN
    SELECT l.tenant_id, l.end_user_id, l.status, l.reserved_usd, l.period_start,
           l.api_key_id, l.model, l.started_at, l.input_tokens, l.output_tokens,
           l.cache_write_5m_tokens, l.cache_write_1h_tokens, l.cache_read_tokens,
           l.web_search_requests, l.cost_usd INTO row
      FROM usage_ledger l WHERE l.id = p_id FOR UPDATE;
    IF NOT FOUND OR row.status NOT IN ('in_flight', 'abandoned')
       OR (row.status = 'abandoned' AND p_status = 'abandoned') THEN
        RETURN false;
    END IF;
    was_in_flight := row.status = 'in_flight';
    UPDATE usage_ledger
       SET status = p_status, model = p_model, input_tokens = p_input,
           output_tokens = p_output, cache_write_5m_tokens = p_cw5m,
           cache_write_1h_tokens = p_cw1h, cache_read_tokens = p_cread,
           web_search_requests = p_web, cost_usd = p_cost, price_version = p_price_version,
           first_token_at = p_first_token_at, ended_at = p_ended_at,
           upstream_request_id = p_upstream_request_id, http_status = p_http_status,
           error_type = p_error_type
     WHERE id = p_id;
    IF row.period_start IS NOT NULL THEN
        -- Tenant row first, then the user row: the same lock order as tollgate_reserve.
        UPDATE spend_counters
           SET spent_usd = spent_usd + p_cost,
               reserved_usd = reserved_usd - CASE WHEN was_in_flight THEN row.reserved_usd ELSE 0 END,
               in_flight = in_flight - CASE WHEN was_in_flight THEN 1 ELSE 0 END,
               requests = requests + CASE WHEN was_in_flight THEN 1 ELSE 0 END
         WHERE tenant_id = row.tenant_id AND end_user_id IS NULL
           AND period_start = row.period_start;
        IF row.end_user_id IS NOT NULL THEN
            UPDATE spend_counters
               SET spent_usd = spent_usd + p_cost,
                   reserved_usd = reserved_usd - CASE WHEN was_in_flight THEN row.reserved_usd ELSE 0 END,
                   requests = requests + CASE WHEN was_in_flight THEN 1 ELSE 0 END
             WHERE tenant_id = row.tenant_id AND end_user_id = row.end_user_id
               AND period_start = row.period_start;
        END IF;
    END IF;
    -- The rollups, last (after the tenant's counter row: one lock order per tenant).
    row_day := (row.started_at AT TIME ZONE 'UTC')::date;
    IF NOT was_in_flight THEN
        -- An abandoned row settled for real: take back what the abandonment counted.
        UPDATE usage_daily d
           SET requests = d.requests - 1,
               input_tokens = d.input_tokens - row.input_tokens,
               output_tokens = d.output_tokens - row.output_tokens,
               cache_write_5m_tokens = d.cache_write_5m_tokens - row.cache_write_5m_tokens,
               cache_write_1h_tokens = d.cache_write_1h_tokens - row.cache_write_1h_tokens,
               cache_read_tokens = d.cache_read_tokens - row.cache_read_tokens,
               web_search_requests = d.web_search_requests - row.web_search_requests,
               cost_usd = d.cost_usd - row.cost_usd
         WHERE d.tenant_id = row.tenant_id AND d.day = row_day
           AND d.api_key_id = row.api_key_id AND d.model = row.model
           AND (d.end_user_id = row.end_user_id
                OR (d.end_user_id IS NULL AND row.end_user_id IS NULL));
    END IF;
    INSERT INTO usage_daily AS d (
        tenant_id, day, api_key_id, end_user_id, model, requests, input_tokens,
        output_tokens, cache_write_5m_tokens, cache_write_1h_tokens, cache_read_tokens,
        web_search_requests, cost_usd)
    VALUES (row.tenant_id, row_day, row.api_key_id, row.end_user_id, p_model, 1, p_input,
            p_output, p_cw5m, p_cw1h, p_cread, p_web, p_cost)
    ON CONFLICT (tenant_id, day, api_key_id, end_user_id, model) DO UPDATE
       SET requests = d.requests + 1,
           input_tokens = d.input_tokens + excluded.input_tokens,
           output_tokens = d.output_tokens + excluded.output_tokens,
           cache_write_5m_tokens = d.cache_write_5m_tokens + excluded.cache_write_5m_tokens,
           cache_write_1h_tokens = d.cache_write_1h_tokens + excluded.cache_write_1h_tokens,
           cache_read_tokens = d.cache_read_tokens + excluded.cache_read_tokens,
           web_search_requests = d.web_search_requests + excluded.web_search_requests,
           cost_usd = d.cost_usd + excluded.cost_usd;
    -- Per end user: the same request, so only the difference to what was counted before.
    INSERT INTO usage_daily_users AS d (
        tenant_id, day, end_user_id, requests, input_tokens, output_tokens,
        cache_write_5m_tokens, cache_write_1h_tokens, cache_read_tokens, web_search_requests,
        cost_usd)
    VALUES (row.tenant_id, row_day, row.end_user_id,
            CASE WHEN was_in_flight THEN 1 ELSE 0 END,
            p_input - CASE WHEN was_in_flight THEN 0 ELSE row.input_tokens END,
            p_output - CASE WHEN was_in_flight THEN 0 ELSE row.output_tokens END,
            p_cw5m - CASE WHEN was_in_flight THEN 0 ELSE row.cache_write_5m_tokens END,
            p_cw1h - CASE WHEN was_in_flight THEN 0 ELSE row.cache_write_1h_tokens END,
            p_cread - CASE WHEN was_in_flight THEN 0 ELSE row.cache_read_tokens END,
            p_web - CASE WHEN was_in_flight THEN 0 ELSE row.web_search_requests END,
            p_cost - CASE WHEN was_in_flight THEN 0 ELSE row.cost_usd END)
    ON CONFLICT (tenant_id, day, end_user_id) DO UPDATE
       SET requests = d.requests + excluded.requests,
           input_tokens = d.input_tokens + excluded.input_tokens,
           output_tokens = d.output_tokens + excluded.output_tokens,
           cache_write_5m_tokens = d.cache_write_5m_tokens + excluded.cache_write_5m_tokens,
           cache_write_1h_tokens = d.cache_write_1h_tokens + excluded.cache_write_1h_tokens,
           cache_read_tokens = d.cache_read_tokens + excluded.cache_read_tokens,
           web_search_requests = d.web_search_requests + excluded.web_search_requests,
           cost_usd = d.cost_usd + excluded.cost_usd;
    RETURN true;
END
$$;
"""

# The body from 2026-11-20-2300_quotas.py, verbatim: what downgrade puts back.
SETTLE_WITHOUT_ROLLUP = r"""
CREATE OR REPLACE FUNCTION tollgate_settle(
    p_id uuid, p_status text, p_model text, p_input bigint, p_output bigint,
    p_cw5m bigint, p_cw1h bigint, p_cread bigint, p_web bigint, p_cost numeric,
    p_price_version text, p_first_token_at timestamptz, p_ended_at timestamptz,
    p_upstream_request_id text, p_http_status integer, p_error_type text)
RETURNS boolean
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    row record;
    was_in_flight boolean;
BEGIN
    SELECT l.tenant_id, l.end_user_id, l.status, l.reserved_usd, l.period_start INTO row
      FROM usage_ledger l WHERE l.id = p_id FOR UPDATE;
    IF NOT FOUND OR row.status NOT IN ('in_flight', 'abandoned')
       OR (row.status = 'abandoned' AND p_status = 'abandoned') THEN
        RETURN false;
    END IF;
    was_in_flight := row.status = 'in_flight';
    UPDATE usage_ledger
       SET status = p_status, model = p_model, input_tokens = p_input,
           output_tokens = p_output, cache_write_5m_tokens = p_cw5m,
           cache_write_1h_tokens = p_cw1h, cache_read_tokens = p_cread,
           web_search_requests = p_web, cost_usd = p_cost, price_version = p_price_version,
           first_token_at = p_first_token_at, ended_at = p_ended_at,
           upstream_request_id = p_upstream_request_id, http_status = p_http_status,
           error_type = p_error_type
     WHERE id = p_id;
    IF row.period_start IS NOT NULL THEN
        -- Tenant row first, then the user row: the same lock order as tollgate_reserve.
        UPDATE spend_counters
           SET spent_usd = spent_usd + p_cost,
               reserved_usd = reserved_usd - CASE WHEN was_in_flight THEN row.reserved_usd ELSE 0 END,
               in_flight = in_flight - CASE WHEN was_in_flight THEN 1 ELSE 0 END,
               requests = requests + CASE WHEN was_in_flight THEN 1 ELSE 0 END
         WHERE tenant_id = row.tenant_id AND end_user_id IS NULL
           AND period_start = row.period_start;
        IF row.end_user_id IS NOT NULL THEN
            UPDATE spend_counters
               SET spent_usd = spent_usd + p_cost,
                   reserved_usd = reserved_usd - CASE WHEN was_in_flight THEN row.reserved_usd ELSE 0 END,
                   requests = requests + CASE WHEN was_in_flight THEN 1 ELSE 0 END
             WHERE tenant_id = row.tenant_id AND end_user_id = row.end_user_id
               AND period_start = row.period_start;
        END IF;
    END IF;
    RETURN true;
END
$$;
"""

BACKFILL = (
    """
    INSERT INTO usage_daily (
        tenant_id, day, api_key_id, end_user_id, model, requests, input_tokens, output_tokens,
        cache_write_5m_tokens, cache_write_1h_tokens, cache_read_tokens, web_search_requests,
        cost_usd)
    SELECT tenant_id, (started_at AT TIME ZONE 'UTC')::date, api_key_id, end_user_id, model,
           count(*), sum(input_tokens), sum(output_tokens), sum(cache_write_5m_tokens),
           sum(cache_write_1h_tokens), sum(cache_read_tokens), sum(web_search_requests),
           sum(cost_usd)
      FROM usage_ledger
     WHERE status <> 'in_flight'
     GROUP BY 2, 1, 3, 4, 5
     ORDER BY 2
    """,
    """
    INSERT INTO usage_daily_users (
        tenant_id, day, end_user_id, requests, input_tokens, output_tokens,
        cache_write_5m_tokens, cache_write_1h_tokens, cache_read_tokens, web_search_requests,
        cost_usd)
    SELECT tenant_id, day, end_user_id, sum(requests), sum(input_tokens), sum(output_tokens),
           sum(cache_write_5m_tokens), sum(cache_write_1h_tokens), sum(cache_read_tokens),
           sum(web_search_requests), sum(cost_usd)
      FROM usage_daily
     GROUP BY 2, 1, 3
     ORDER BY 2
    """,
)


def _counters() -> list[sa.Column[object]]:
    columns: list[sa.Column[object]] = [
        sa.Column(name, sa.BigInteger(), server_default="0", nullable=False)
        for name in (
            "requests",
            "input_tokens",
            "output_tokens",
            "cache_write_5m_tokens",
            "cache_write_1h_tokens",
            "cache_read_tokens",
            "web_search_requests",
        )
    ]
    money = sa.Numeric(precision=20, scale=10)
    columns.append(sa.Column("cost_usd", money, server_default="0", nullable=False))
    return columns


def _rollup_table(name: str, scope: list[str]) -> None:
    """A rollup: an identity key, the scope columns (unique together, NULL end user included),
    the counters, an index per day, one per end user and day, and planner statistics."""
    scope_columns = {
        "tenant_id": sa.Column("tenant_id", sa.UUID(), nullable=False),
        "day": sa.Column("day", sa.Date(), nullable=False),
        "api_key_id": sa.Column("api_key_id", sa.UUID(), nullable=False),
        "end_user_id": sa.Column("end_user_id", sa.UUID(), nullable=True),
        "model": sa.Column("model", sa.Text(), nullable=False),
    }
    op.create_table(
        name,
        sa.Column("id", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        *(scope_columns[c] for c in scope),
        *_counters(),
        sa.PrimaryKeyConstraint("id", name=op.f(f"pk_{name}")),
    )
    # Today's rows are updated by every settle: room on each page keeps those updates HOT.
    op.execute(f"ALTER TABLE {name} SET (fillfactor = 75)")
    op.create_index(
        f"uq_{name}_scope", name, scope, unique=True, postgresql_nulls_not_distinct=True
    )
    op.create_index(f"ix_{name}_day", name, ["day"])
    op.create_index(f"ix_{name}_user_day", name, ["end_user_id", "day"])
    # Each end user belongs to one tenant: without this, the planner multiplies the two
    # columns' distinct counts, expects ~100x too many groups for "by user" and sorts on disk.
    op.execute(
        f"CREATE STATISTICS st_{name}_tenant_user (ndistinct) ON tenant_id, end_user_id FROM {name}"
    )


def upgrade() -> None:
    _rollup_table("usage_daily", ["tenant_id", "day", "api_key_id", "end_user_id", "model"])
    op.create_index("ix_usage_daily_key_day", "usage_daily", ["api_key_id", "day"])
    _rollup_table("usage_daily_users", ["tenant_id", "day", "end_user_id"])
    op.execute("LOCK TABLE usage_ledger IN SHARE MODE")
    op.execute(SETTLE_WITH_ROLLUP)
    for statement in BACKFILL:
        op.execute(statement)


def downgrade() -> None:
    op.execute(SETTLE_WITHOUT_ROLLUP)
    op.drop_table("usage_daily_users")
    op.drop_table("usage_daily")
