"""quotas: reserve -> settle in one round trip each, rpm windows, server heartbeats.

`tollgate_reserve` checks every limit of a request (tenant concurrency, key rpm, tenant budget,
end-user budget) and, only if all pass, reserves its worst-case cost and writes the in-flight
ledger row, all under the tenant's counter row lock: two replicas can never both take the last
dollar. `tollgate_settle` makes a row final and moves its reservation to spend, in one
transaction; it is idempotent, and it also accepts a row the reaper marked `abandoned` (a spooled
settlement replayed after a crash then still lands, without releasing the reservation twice).

Revision ID: b2c4d6e8f0a1
Revises: 7f50eb68c100
Create Date: 2026-11-20 23:00:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "b2c4d6e8f0a1"
down_revision: str | None = "7f50eb68c100"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

RESERVE = r"""
CREATE FUNCTION tollgate_reserve(
    p_id uuid, p_tenant uuid, p_key uuid, p_user uuid, p_endpoint text, p_model text,
    p_started timestamptz, p_period_start timestamptz, p_period_end timestamptz,
    p_hard numeric, p_soft numeric, p_owner text)
RETURNS TABLE (outcome text, retry_after integer, budget numeric, spent numeric,
               reserved numeric, rpm integer, rpm_used integer, concurrency integer,
               in_flight integer, user_budget numeric, user_spent numeric)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    lim record;
    ctr record;
    uctr record;
    amount numeric;
    ulimit numeric;
    u_spent numeric;
    win timestamptz := date_trunc('minute', now());
    into_minute numeric := extract(epoch FROM now() - date_trunc('minute', now()));
    cur_count integer;
    prev_count integer;
    weighted numeric;
BEGIN
    SELECT COALESCE(t.monthly_budget_usd, p.monthly_budget_usd) AS budget,
           COALESCE(t.rpm_limit, p.rpm_limit) AS rpm,
           COALESCE(t.max_concurrent, p.max_concurrent) AS conc,
           COALESCE(t.quota_mode, p.quota_mode) AS mode,
           t.user_default_budget_usd AS user_default
      INTO lim
      FROM tenants t JOIN plans p ON p.code = t.plan_code
     WHERE t.id = p_tenant;
    amount := CASE WHEN lim.mode = 'soft' THEN p_soft ELSE p_hard END;

    -- The tenant's counter row for this period, locked: every check below is serialised per
    -- tenant across all server processes.
    SELECT * INTO ctr FROM spend_counters c
     WHERE c.tenant_id = p_tenant AND c.end_user_id IS NULL AND c.period_start = p_period_start
       FOR UPDATE;
    IF NOT FOUND THEN
        INSERT INTO spend_counters (tenant_id, end_user_id, period_start, period_end)
        VALUES (p_tenant, NULL, p_period_start, p_period_end) ON CONFLICT DO NOTHING;
        SELECT * INTO ctr FROM spend_counters c
         WHERE c.tenant_id = p_tenant AND c.end_user_id IS NULL
           AND c.period_start = p_period_start
           FOR UPDATE;
    END IF;

    IF ctr.in_flight >= lim.conc THEN
        RETURN QUERY SELECT 'concurrency'::text, 1, lim.budget, ctr.spent_usd, ctr.reserved_usd,
            lim.rpm, NULL::integer, lim.conc, ctr.in_flight, NULL::numeric, NULL::numeric;
        RETURN;
    END IF;

    -- Requests per minute per key: a sliding window over this minute and the last one.
    SELECT COALESCE(sum(w.count) FILTER (WHERE w.window_start = win), 0),
           COALESCE(sum(w.count) FILTER (WHERE w.window_start = win - interval '1 minute'), 0)
      INTO cur_count, prev_count
      FROM rate_windows w
     WHERE w.api_key_id = p_key AND w.window_start >= win - interval '1 minute';
    weighted := cur_count + prev_count * (60 - into_minute) / 60;
    IF weighted + 1 > lim.rpm THEN
        RETURN QUERY SELECT 'rate'::text,
            GREATEST(1, CEIL(CASE WHEN cur_count + 1 > lim.rpm THEN 60 - into_minute
                                  ELSE 60 * (weighted + 1 - lim.rpm) / GREATEST(prev_count, 1)
                             END))::integer,
            lim.budget, ctr.spent_usd, ctr.reserved_usd, lim.rpm, CEIL(weighted)::integer,
            lim.conc, ctr.in_flight, NULL::numeric, NULL::numeric;
        RETURN;
    END IF;

    IF ctr.spent_usd + ctr.reserved_usd + amount > lim.budget THEN
        RETURN QUERY SELECT 'budget'::text, 0, lim.budget, ctr.spent_usd, ctr.reserved_usd,
            lim.rpm, CEIL(weighted)::integer, lim.conc, ctr.in_flight,
            NULL::numeric, NULL::numeric;
        RETURN;
    END IF;

    IF p_user IS NOT NULL THEN
        SELECT COALESCE(u.monthly_budget_usd, lim.user_default) INTO ulimit
          FROM end_users u WHERE u.id = p_user;
        SELECT * INTO uctr FROM spend_counters c
         WHERE c.tenant_id = p_tenant AND c.end_user_id = p_user
           AND c.period_start = p_period_start
           FOR UPDATE;
        IF NOT FOUND THEN
            INSERT INTO spend_counters (tenant_id, end_user_id, period_start, period_end)
            VALUES (p_tenant, p_user, p_period_start, p_period_end) ON CONFLICT DO NOTHING;
            SELECT * INTO uctr FROM spend_counters c
             WHERE c.tenant_id = p_tenant AND c.end_user_id = p_user
               AND c.period_start = p_period_start
               FOR UPDATE;
        END IF;
        IF ulimit IS NOT NULL AND uctr.spent_usd + uctr.reserved_usd + amount > ulimit THEN
            RETURN QUERY SELECT 'user_budget'::text, 0, lim.budget, ctr.spent_usd,
                ctr.reserved_usd, lim.rpm, CEIL(weighted)::integer, lim.conc, ctr.in_flight,
                ulimit, uctr.spent_usd;
            RETURN;
        END IF;
        UPDATE spend_counters SET reserved_usd = reserved_usd + amount WHERE id = uctr.id;
        u_spent := uctr.spent_usd;
    END IF;

    UPDATE spend_counters
       SET reserved_usd = reserved_usd + amount, in_flight = in_flight + 1
     WHERE id = ctr.id;
    INSERT INTO rate_windows AS w (api_key_id, window_start, count) VALUES (p_key, win, 1)
        ON CONFLICT (api_key_id, window_start) DO UPDATE SET count = w.count + 1;
    INSERT INTO usage_ledger (id, tenant_id, api_key_id, end_user_id, endpoint, model, status,
                              started_at, owner, reserved_usd, period_start)
    VALUES (p_id, p_tenant, p_key, p_user, p_endpoint, p_model, 'in_flight', p_started,
            p_owner, amount, p_period_start);
    RETURN QUERY SELECT 'ok'::text, 0, lim.budget, ctr.spent_usd, ctr.reserved_usd + amount,
        lim.rpm, CEIL(weighted + 1)::integer, lim.conc, ctr.in_flight + 1,
        ulimit, u_spent;
END
$$;
"""

SETTLE = r"""
CREATE FUNCTION tollgate_settle(
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


def upgrade() -> None:
    op.add_column(
        "usage_ledger", sa.Column("period_start", sa.DateTime(timezone=True), nullable=True)
    )
    op.create_table(
        "rate_windows",
        sa.Column("api_key_id", sa.UUID(), nullable=False),
        sa.Column("window_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("count", sa.Integer(), server_default="0", nullable=False),
        sa.ForeignKeyConstraint(
            ["api_key_id"],
            ["api_keys.id"],
            name=op.f("fk_rate_windows_api_key_id_api_keys"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("api_key_id", "window_start", name=op.f("pk_rate_windows")),
    )
    op.create_table(
        "server_heartbeats",
        sa.Column("owner", sa.Text(), nullable=False),
        sa.Column("last_seen", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("owner", name=op.f("pk_server_heartbeats")),
    )
    op.execute(RESERVE)
    op.execute(SETTLE)


def downgrade() -> None:
    op.execute(
        "DROP FUNCTION tollgate_settle(uuid, text, text, bigint, bigint, bigint, bigint, bigint, bigint, numeric, text, timestamptz, timestamptz, text, integer, text)"
    )
    op.execute(
        "DROP FUNCTION tollgate_reserve(uuid, uuid, uuid, uuid, text, text, timestamptz, timestamptz, timestamptz, numeric, numeric, text)"
    )
    op.drop_table("server_heartbeats")
    op.drop_table("rate_windows")
    op.drop_column("usage_ledger", "period_start")
