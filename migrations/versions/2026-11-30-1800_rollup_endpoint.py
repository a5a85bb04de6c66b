"""rollup per endpoint: `usage_daily` gains `endpoint`, part of its scope, so reports can
filter by endpoint or group by it (batch rows apart from interactive ones) and still read whole
days from the rollup, exactly.

`usage_daily_users` stays as it is (a report by tenant, end user or day over every endpoint
reads it; one that names an endpoint reads `usage_daily`). `tollgate_settle` and
`tollgate_settle_batch_result` add each row under its endpoint (`batch` for a batch result); an
abandoned row settled for real takes back what it added under its own endpoint.

Upgrading rebuilds `usage_daily` from the ledger's final rows (the rollups equal them exactly),
holding the ledger in SHARE mode so no settle slips between the rebuild and the new functions.
Downgrading folds the endpoints back together the same way and restores the old functions.

Revision ID: 3e5a7c9b1d42
Revises: e1a2b3c4d5f6
Create Date: 2026-11-30 18:00:00+00:00
"""

import importlib.util
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

import sqlalchemy as sa
from alembic import op

revision: str = "3e5a7c9b1d42"
down_revision: str | None = "e1a2b3c4d5f6"  # after admin_tokens_audit (linear history)
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COUNTERS = (
    "requests, input_tokens, output_tokens, cache_write_5m_tokens, cache_write_1h_tokens, "
    "cache_read_tokens, web_search_requests, cost_usd"
)
SUMS = (
    "count(*), sum(input_tokens), sum(output_tokens), sum(cache_write_5m_tokens), "
    "sum(cache_write_1h_tokens), sum(cache_read_tokens), sum(web_search_requests), "
    "sum(cost_usd)"
)
DAY = "(started_at AT TIME ZONE 'UTC')::date"

TOLLGATE_SETTLE = r"""
CREATE OR REPLACE FUNCTION tollgate_settle(
    p_id uuid, p_status text, p_model text, p_input bigint, p_output bigint,
    p_cw5m bigint, p_cw1h bigint, p_cread bigint, p_web bigint, p_cost numeric,
    p_price_version text, p_first_token_at timestamptz, p_ended_at timestamptz,
    p_upstream_request_id text, p_http_status integer, p_error_type text,
    p_speed text DEFAULT NULL, p_inference_geo text DEFAULT NULL)
RETURNS boolean
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    row record;
    was_in_flight boolean;
    row_day date;
    lease record;
    taken numeric := 0;
    released numeric := 0;
    user_released numeric := 0;
    slot integer := 0;
BEGIN
    SELECT l.tenant_id, l.end_user_id, l.status, l.reserved_usd, l.period_start, l.lease_id,
           l.api_key_id, l.model, l.endpoint, l.started_at, l.input_tokens, l.output_tokens,
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
           error_type = p_error_type, speed = p_speed, inference_geo = p_inference_geo
     WHERE id = p_id;
    IF row.period_start IS NOT NULL THEN
        IF row.lease_id IS NULL THEN
            released := CASE WHEN was_in_flight THEN row.reserved_usd ELSE 0 END;
            user_released := released;
            slot := CASE WHEN was_in_flight THEN 1 ELSE 0 END;
        ELSIF was_in_flight THEN
            -- Counter rows (tenant, then user), then the lease: the lock order of every
            -- ledger function.
            PERFORM 1 FROM spend_counters c
             WHERE c.tenant_id = row.tenant_id AND c.end_user_id IS NULL
               AND c.period_start = row.period_start
               FOR UPDATE;
            IF row.end_user_id IS NOT NULL THEN
                PERFORM 1 FROM spend_counters c
                 WHERE c.tenant_id = row.tenant_id AND c.end_user_id = row.end_user_id
                   AND c.period_start = row.period_start
                   FOR UPDATE;
            END IF;
            SELECT b.amount_usd, b.end_user_id INTO lease FROM budget_leases b
             WHERE b.tenant_id = row.tenant_id AND b.id = row.lease_id FOR UPDATE;
            IF FOUND THEN
                taken := LEAST(p_cost, lease.amount_usd);
                UPDATE budget_leases SET amount_usd = amount_usd - taken
                 WHERE tenant_id = row.tenant_id AND id = row.lease_id;
                released := taken;
                user_released := CASE WHEN lease.end_user_id IS NULL THEN 0 ELSE taken END;
            END IF;
        END IF;
        -- Tenant row first, then the user row: the same lock order as tollgate_reserve.
        UPDATE spend_counters
           SET spent_usd = spent_usd + p_cost,
               reserved_usd = reserved_usd - released,
               in_flight = in_flight - slot,
               requests = requests + CASE WHEN was_in_flight THEN 1 ELSE 0 END
         WHERE tenant_id = row.tenant_id AND end_user_id IS NULL
           AND period_start = row.period_start;
        IF row.end_user_id IS NOT NULL THEN
            UPDATE spend_counters
               SET spent_usd = spent_usd + p_cost,
                   reserved_usd = reserved_usd - user_released,
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
           AND d.endpoint = row.endpoint
           AND (d.end_user_id = row.end_user_id
                OR (d.end_user_id IS NULL AND row.end_user_id IS NULL));
    END IF;
    INSERT INTO usage_daily AS d (
        tenant_id, day, api_key_id, end_user_id, model, endpoint, requests, input_tokens,
        output_tokens, cache_write_5m_tokens, cache_write_1h_tokens, cache_read_tokens,
        web_search_requests, cost_usd)
    VALUES (row.tenant_id, row_day, row.api_key_id, row.end_user_id, p_model, row.endpoint, 1,
            p_input, p_output, p_cw5m, p_cw1h, p_cread, p_web, p_cost)
    ON CONFLICT (tenant_id, day, api_key_id, end_user_id, model, endpoint) DO UPDATE
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

SETTLE_BATCH_RESULT = r"""
CREATE OR REPLACE FUNCTION tollgate_settle_batch_result(
    p_batch uuid, p_custom_id text, p_status text, p_model text, p_input bigint,
    p_output bigint, p_cw5m bigint, p_cw1h bigint, p_cread bigint, p_web bigint,
    p_cost numeric, p_price_version text, p_ended_at timestamptz,
    p_upstream_request_id text, p_error_type text)
RETURNS boolean
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    req record;
    new_id uuid;
    row_day date;
BEGIN
    SELECT b.tenant_id, b.api_key_id, b.created_at, b.period_start, r.end_user_id,
           r.reserved_usd, COALESCE(p_model, r.model) AS model INTO req
      FROM batch_requests r JOIN batches b ON b.id = r.batch_id
     WHERE r.batch_id = p_batch AND r.custom_id = p_custom_id;
    IF NOT FOUND THEN
        RETURN false;  -- not a request of this batch: nothing was reserved for it
    END IF;
    INSERT INTO usage_ledger (id, tenant_id, api_key_id, end_user_id, endpoint, model, status,
        input_tokens, output_tokens, cache_write_5m_tokens, cache_write_1h_tokens,
        cache_read_tokens, web_search_requests, cost_usd, reserved_usd, price_version,
        started_at, ended_at, upstream_request_id, error_type, period_start, batch_id,
        custom_id)
    VALUES (gen_random_uuid(), req.tenant_id, req.api_key_id, req.end_user_id, 'batch',
        req.model, p_status, p_input, p_output, p_cw5m, p_cw1h, p_cread, p_web, p_cost,
        req.reserved_usd, p_price_version, req.created_at, p_ended_at, p_upstream_request_id,
        p_error_type, req.period_start, p_batch, p_custom_id)
    ON CONFLICT (batch_id, custom_id) WHERE batch_id IS NOT NULL DO NOTHING
    RETURNING id INTO new_id;
    IF new_id IS NULL THEN
        RETURN false;  -- settled before (a replay, or another replica)
    END IF;
    UPDATE spend_counters
       SET spent_usd = spent_usd + p_cost, reserved_usd = reserved_usd - req.reserved_usd,
           requests = requests + 1
     WHERE tenant_id = req.tenant_id AND end_user_id IS NULL
       AND period_start = req.period_start;
    IF req.end_user_id IS NOT NULL THEN
        UPDATE spend_counters
           SET spent_usd = spent_usd + p_cost, reserved_usd = reserved_usd - req.reserved_usd,
               requests = requests + 1
         WHERE tenant_id = req.tenant_id AND end_user_id = req.end_user_id
           AND period_start = req.period_start;
    END IF;
    UPDATE batches SET reserved_usd = reserved_usd - req.reserved_usd WHERE id = p_batch;
    row_day := (req.created_at AT TIME ZONE 'UTC')::date;
    INSERT INTO usage_daily AS d (
        tenant_id, day, api_key_id, end_user_id, model, endpoint, requests, input_tokens,
        output_tokens, cache_write_5m_tokens, cache_write_1h_tokens, cache_read_tokens,
        web_search_requests, cost_usd)
    VALUES (req.tenant_id, row_day, req.api_key_id, req.end_user_id, req.model, 'batch', 1,
            p_input, p_output, p_cw5m, p_cw1h, p_cread, p_web, p_cost)
    ON CONFLICT (tenant_id, day, api_key_id, end_user_id, model, endpoint) DO UPDATE
       SET requests = d.requests + 1,
           input_tokens = d.input_tokens + excluded.input_tokens,
           output_tokens = d.output_tokens + excluded.output_tokens,
           cache_write_5m_tokens = d.cache_write_5m_tokens + excluded.cache_write_5m_tokens,
           cache_write_1h_tokens = d.cache_write_1h_tokens + excluded.cache_write_1h_tokens,
           cache_read_tokens = d.cache_read_tokens + excluded.cache_read_tokens,
           web_search_requests = d.web_search_requests + excluded.web_search_requests,
           cost_usd = d.cost_usd + excluded.cost_usd;
    INSERT INTO usage_daily_users AS d (
        tenant_id, day, end_user_id, requests, input_tokens, output_tokens,
        cache_write_5m_tokens, cache_write_1h_tokens, cache_read_tokens, web_search_requests,
        cost_usd)
    VALUES (req.tenant_id, row_day, req.end_user_id, 1, p_input, p_output, p_cw5m, p_cw1h,
            p_cread, p_web, p_cost)
    ON CONFLICT (tenant_id, day, end_user_id) DO UPDATE
       SET requests = d.requests + 1,
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


def _rebuild(scope: list[str]) -> None:
    """`usage_daily` again from the ledger's final rows, per `scope` (after tenant and day)."""
    columns = ", ".join(["tenant_id", "day", *scope])
    keys = ", ".join(["tenant_id", DAY, *scope])
    op.execute("DELETE FROM usage_daily")
    op.execute(
        f"INSERT INTO usage_daily ({columns}, {COUNTERS}) "  # noqa: S608 (constant parts)
        f"SELECT {keys}, {SUMS} FROM usage_ledger WHERE status <> 'in_flight' "
        f"GROUP BY {keys} ORDER BY 2"
    )


def _scope_index(scope: list[str]) -> None:
    op.create_index(
        "uq_usage_daily_scope",
        "usage_daily",
        ["tenant_id", "day", *scope],
        unique=True,
        postgresql_nulls_not_distinct=True,
    )


def _migration(filename: str) -> ModuleType:
    path = Path(__file__).with_name(filename)
    spec = importlib.util.spec_from_file_location(path.stem.replace("-", "_"), path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def upgrade() -> None:
    op.execute("LOCK TABLE usage_ledger IN SHARE MODE")
    op.add_column("usage_daily", sa.Column("endpoint", sa.String(length=32), nullable=True))
    op.drop_index("uq_usage_daily_scope", table_name="usage_daily")
    _rebuild(["api_key_id", "end_user_id", "model", "endpoint"])
    op.alter_column("usage_daily", "endpoint", nullable=False)
    _scope_index(["api_key_id", "end_user_id", "model", "endpoint"])
    op.execute(TOLLGATE_SETTLE)
    op.execute(SETTLE_BATCH_RESULT)


def downgrade() -> None:
    op.execute("LOCK TABLE usage_ledger IN SHARE MODE")
    op.drop_index("uq_usage_daily_scope", table_name="usage_daily")
    op.drop_column("usage_daily", "endpoint")
    _rebuild(["api_key_id", "end_user_id", "model"])
    _scope_index(["api_key_id", "end_user_id", "model"])
    op.execute(_migration("2026-11-30-1700_leases.py").TOLLGATE_SETTLE)
    batches = _migration("2026-11-30-1400_batches_files.py")
    op.execute(batches.SETTLE_BATCH_RESULT.replace("CREATE FUNCTION", "CREATE OR REPLACE FUNCTION"))
