"""Escrow leases: a process takes a slice of a tenant's (or an active end user's) remaining
budget, and concurrency slots, in one statement, and admits requests against it in memory.

* `budget_leases` (primary key `(tenant_id, id)`, distributable by tenant): one row per lease
  with what it still holds. A lease's amount and slots are counted into its counters'
  `reserved_usd` and `in_flight`, so every per-request check sees them unchanged and
  `spent + reserved (leases included) <= limit` holds in hard mode.
* `usage_ledger.lease_id`: the lease a request was admitted against (NULL: reserved per request).
* `tollgate_lease_acquire`, `tollgate_lease_return`, `tollgate_reap_leases`; `tollgate_settle`
  takes a leased row's cost out of its lease.

Revision ID: d5f7b9a1c3e5
Revises: a1c3e5f7b9d2
Create Date: 2026-11-30 17:00:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "d5f7b9a1c3e5"
down_revision: str | None = "a1c3e5f7b9d2"  # after unique_tenant_names (linear history)
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

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

TOLLGATE_LEASE_ACQUIRE = r"""
CREATE OR REPLACE FUNCTION tollgate_lease_acquire(
    p_lease uuid, p_new boolean, p_owner text, p_tenant uuid, p_user uuid,
    p_period_start timestamptz, p_period_end timestamptz, p_want_usd numeric,
    p_min_usd numeric, p_want_slots integer, p_stale_s double precision)
RETURNS TABLE (granted_usd numeric, granted_slots integer, live integer, lost boolean)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    lim record;
    ctr record;
    uctr record;
    ulimit numeric;
    n_live integer;
    avail numeric;
    g_usd numeric := 0;
    g_slots integer := 0;
BEGIN
    SELECT COALESCE(t.monthly_budget_usd, p.monthly_budget_usd) AS budget,
           COALESCE(t.max_concurrent, p.max_concurrent) AS conc,
           t.user_default_budget_usd AS user_default
      INTO lim
      FROM tenants t JOIN plans p ON p.code = t.plan_code
     WHERE t.id = p_tenant;
    SELECT GREATEST(1, count(*)) INTO n_live FROM server_heartbeats h
     WHERE h.last_seen > now() - make_interval(secs => p_stale_s);

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
    avail := lim.budget - ctr.spent_usd - ctr.reserved_usd;
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
        IF ulimit IS NOT NULL THEN
            avail := LEAST(avail, ulimit - uctr.spent_usd - uctr.reserved_usd);
        END IF;
    END IF;

    IF NOT p_new THEN
        PERFORM 1 FROM budget_leases b WHERE b.tenant_id = p_tenant AND b.id = p_lease
           FOR UPDATE;
        IF NOT FOUND THEN
            RETURN QUERY SELECT 0::numeric, 0, n_live, true;
            RETURN;
        END IF;
    END IF;

    g_usd := LEAST(p_want_usd, trunc(GREATEST(avail, 0) / n_live, 10));
    IF g_usd < p_min_usd OR g_usd <= 0 THEN
        g_usd := 0;
    END IF;
    IF p_user IS NULL AND p_want_slots > 0 THEN
        g_slots := LEAST(p_want_slots, GREATEST(lim.conc - ctr.in_flight, 0) / n_live);
    END IF;
    IF g_usd = 0 AND g_slots = 0 THEN
        RETURN QUERY SELECT 0::numeric, 0, n_live, false;
        RETURN;
    END IF;

    UPDATE spend_counters SET reserved_usd = reserved_usd + g_usd, in_flight = in_flight + g_slots
     WHERE id = ctr.id;
    IF p_user IS NOT NULL THEN
        UPDATE spend_counters SET reserved_usd = reserved_usd + g_usd WHERE id = uctr.id;
    END IF;
    INSERT INTO budget_leases AS b (tenant_id, id, owner, end_user_id, period_start,
                                    amount_usd, slots)
    VALUES (p_tenant, p_lease, p_owner, p_user, p_period_start, g_usd, g_slots)
    ON CONFLICT (tenant_id, id) DO UPDATE
       SET amount_usd = b.amount_usd + excluded.amount_usd, slots = b.slots + excluded.slots,
           updated_at = now();
    RETURN QUERY SELECT g_usd, g_slots, n_live, false;
END
$$;
"""

TOLLGATE_LEASE_RETURN = r"""
CREATE OR REPLACE FUNCTION tollgate_lease_return(
    p_tenant uuid, p_lease uuid, p_keep_usd numeric, p_keep_slots integer)
RETURNS TABLE (released_usd numeric, released_slots integer)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    head record;
    lease record;
    r_usd numeric;
    r_slots integer;
BEGIN
    SELECT b.end_user_id, b.period_start INTO head FROM budget_leases b
     WHERE b.tenant_id = p_tenant AND b.id = p_lease;
    IF NOT FOUND THEN
        RETURN QUERY SELECT 0::numeric, 0;
        RETURN;
    END IF;
    PERFORM 1 FROM spend_counters c
     WHERE c.tenant_id = p_tenant AND c.end_user_id IS NULL AND c.period_start = head.period_start
       FOR UPDATE;
    IF head.end_user_id IS NOT NULL THEN
        PERFORM 1 FROM spend_counters c
         WHERE c.tenant_id = p_tenant AND c.end_user_id = head.end_user_id
           AND c.period_start = head.period_start
           FOR UPDATE;
    END IF;
    SELECT * INTO lease FROM budget_leases b WHERE b.tenant_id = p_tenant AND b.id = p_lease
       FOR UPDATE;
    IF NOT FOUND THEN  -- reaped while we waited for the counter locks
        RETURN QUERY SELECT 0::numeric, 0;
        RETURN;
    END IF;
    r_usd := GREATEST(lease.amount_usd - GREATEST(p_keep_usd, 0), 0);
    r_slots := GREATEST(lease.slots - GREATEST(p_keep_slots, 0), 0);
    IF lease.amount_usd - r_usd = 0 AND lease.slots - r_slots = 0 THEN
        DELETE FROM budget_leases WHERE tenant_id = p_tenant AND id = p_lease;
    ELSE
        UPDATE budget_leases SET amount_usd = amount_usd - r_usd, slots = slots - r_slots,
               updated_at = now()
         WHERE tenant_id = p_tenant AND id = p_lease;
    END IF;
    UPDATE spend_counters SET reserved_usd = reserved_usd - r_usd, in_flight = in_flight - r_slots
     WHERE tenant_id = p_tenant AND end_user_id IS NULL AND period_start = head.period_start;
    IF head.end_user_id IS NOT NULL THEN
        UPDATE spend_counters SET reserved_usd = reserved_usd - r_usd
         WHERE tenant_id = p_tenant AND end_user_id = head.end_user_id
           AND period_start = head.period_start;
    END IF;
    RETURN QUERY SELECT r_usd, r_slots;
END
$$;
"""

TOLLGATE_REAP_LEASES = r"""
CREATE OR REPLACE FUNCTION tollgate_reap_leases(p_stale_s double precision, p_batch integer)
RETURNS integer
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    cand record;
    gone record;
    n integer := 0;
BEGIN
    FOR cand IN
        SELECT b.tenant_id, b.id, b.end_user_id, b.period_start FROM budget_leases b
         WHERE NOT EXISTS (SELECT 1 FROM server_heartbeats h
                            WHERE h.owner = b.owner
                              AND h.last_seen > now() - make_interval(secs => p_stale_s))
         ORDER BY b.tenant_id, b.id
         LIMIT p_batch
    LOOP
        PERFORM 1 FROM spend_counters c
         WHERE c.tenant_id = cand.tenant_id AND c.end_user_id IS NULL
           AND c.period_start = cand.period_start
           FOR UPDATE;
        IF cand.end_user_id IS NOT NULL THEN
            PERFORM 1 FROM spend_counters c
             WHERE c.tenant_id = cand.tenant_id AND c.end_user_id = cand.end_user_id
               AND c.period_start = cand.period_start
               FOR UPDATE;
        END IF;
        DELETE FROM budget_leases b WHERE b.tenant_id = cand.tenant_id AND b.id = cand.id
            RETURNING b.amount_usd, b.slots INTO gone;
        CONTINUE WHEN NOT FOUND;  -- another reaper (or the owner's return) got there first
        UPDATE spend_counters
           SET reserved_usd = reserved_usd - gone.amount_usd, in_flight = in_flight - gone.slots
         WHERE tenant_id = cand.tenant_id AND end_user_id IS NULL
           AND period_start = cand.period_start;
        IF cand.end_user_id IS NOT NULL THEN
            UPDATE spend_counters SET reserved_usd = reserved_usd - gone.amount_usd
             WHERE tenant_id = cand.tenant_id AND end_user_id = cand.end_user_id
               AND period_start = cand.period_start;
        END IF;
        n := n + 1;
    END LOOP;
    RETURN n;
END
$$;
"""


def upgrade() -> None:
    money = sa.Numeric(20, 10)
    op.create_table(
        "budget_leases",
        sa.Column("tenant_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("owner", sa.Text(), nullable=False),
        sa.Column("end_user_id", postgresql.UUID(as_uuid=True), nullable=True),
        sa.Column("period_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("amount_usd", money, server_default="0", nullable=False),
        sa.Column("slots", sa.Integer(), server_default="0", nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.CheckConstraint(
            "amount_usd >= 0 AND slots >= 0", name=op.f("ck_budget_leases_non_negative")
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_budget_leases_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_budget_leases")),
    )
    op.create_index("ix_budget_leases_owner", "budget_leases", ["owner"])
    op.add_column(
        "usage_ledger", sa.Column("lease_id", postgresql.UUID(as_uuid=True), nullable=True)
    )
    for function in (
        TOLLGATE_SETTLE,
        TOLLGATE_LEASE_ACQUIRE,
        TOLLGATE_LEASE_RETURN,
        TOLLGATE_REAP_LEASES,
    ):
        op.execute(function)


def downgrade() -> None:
    import importlib.util
    from pathlib import Path

    op.execute("DROP FUNCTION tollgate_reap_leases(double precision, integer)")
    op.execute("DROP FUNCTION tollgate_lease_return(uuid, uuid, numeric, integer)")
    op.execute(
        "DROP FUNCTION tollgate_lease_acquire(uuid, boolean, text, uuid, uuid, timestamptz, "
        "timestamptz, numeric, numeric, integer, double precision)"
    )
    path = Path(__file__).with_name("2026-11-30-1300_price_book.py")
    spec = importlib.util.spec_from_file_location("price_book_migration", path)
    assert spec is not None and spec.loader is not None
    previous = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(previous)
    op.execute(previous._new_settle())
    op.drop_column("usage_ledger", "lease_id")
    op.drop_index("ix_budget_leases_owner", table_name="budget_leases")
    op.drop_table("budget_leases")
