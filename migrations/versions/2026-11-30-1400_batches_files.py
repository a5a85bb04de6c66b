"""batches and files: who owns each upstream batch and file, per-request batch reservations,
settlement progress, and batch rows in the ledger.

* `files`: every file a tenant uploaded through Tollgate (upstream id, tenant, key, size).
* `batches`: every Message Batch a tenant created (upstream id once known, tenant, key, budget
  period, what is still reserved, how many result lines settlement has processed).
* `batch_requests`: one row per request of a batch: its custom_id, end user, model and the
  amount reserved for it at submission.
* `usage_ledger` gains `batch_id` and `custom_id`, unique together: a batch request is written to
  the ledger once, whoever settles it and however often. Statuses `canceled` and `expired` join.

`tollgate_reserve_batch` checks a whole batch at once (rpm counts it once, concurrency does not
apply; tenant budget against the sum of its worst cases, each end user against the sum of
theirs) and reserves it, writing the batch and its requests, under the tenant's counter row
lock. `tollgate_settle_batch_result` writes one result's ledger row, moves its reservation to
spend and updates the rollups, in one transaction, at most once. `tollgate_release_batch`
releases whatever a batch still holds (a submission the upstream refused, or leftovers).

Revision ID: 9b1d3f5a7c20
Revises: b7c9d1e3f5a7
Create Date: 2026-11-30 14:00:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "9b1d3f5a7c20"
down_revision: str | None = "b7c9d1e3f5a7"  # after the price book (linear history)
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OLD_STATUSES = (
    "in_flight",
    "ok",
    "incomplete",
    "client_disconnected",
    "upstream_error",
    "timeout",
    "abandoned",
)
NEW_STATUSES = (*OLD_STATUSES, "canceled", "expired")

RESERVE_BATCH = r"""
CREATE FUNCTION tollgate_reserve_batch(
    p_batch uuid, p_tenant uuid, p_key uuid, p_started timestamptz,
    p_period_start timestamptz, p_period_end timestamptz, p_owner text,
    p_custom_ids text[], p_users uuid[], p_models text[], p_hard numeric[], p_soft numeric[])
RETURNS TABLE (outcome text, retry_after integer, budget numeric, spent numeric,
               reserved numeric, rpm integer, rpm_used integer, concurrency integer,
               in_flight integer, user_budget numeric, user_spent numeric)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    lim record;
    ctr record;
    uctr record;
    usr record;
    soft boolean;
    amounts numeric[];
    total numeric;
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
    soft := lim.mode = 'soft';
    amounts := CASE WHEN soft THEN p_soft ELSE p_hard END;
    SELECT COALESCE(sum(a), 0) INTO total FROM unnest(amounts) AS x(a);

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

    -- A batch is one request for rpm (same sliding window as tollgate_reserve).
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

    IF ctr.spent_usd + ctr.reserved_usd + total > lim.budget THEN
        RETURN QUERY SELECT 'budget'::text, 0, lim.budget, ctr.spent_usd, ctr.reserved_usd,
            lim.rpm, CEIL(weighted)::integer, lim.conc, ctr.in_flight,
            NULL::numeric, NULL::numeric;
        RETURN;
    END IF;

    -- Every end user's share, checked before anything is reserved (ordered: one lock order).
    FOR usr IN
        SELECT r.end_user_id AS id, sum(r.amount) AS amount,
               COALESCE(u.monthly_budget_usd, lim.user_default) AS ulimit
          FROM unnest(p_users, amounts) AS r(end_user_id, amount)
          JOIN end_users u ON u.id = r.end_user_id
         GROUP BY r.end_user_id, u.monthly_budget_usd
         ORDER BY r.end_user_id
    LOOP
        INSERT INTO spend_counters (tenant_id, end_user_id, period_start, period_end)
        VALUES (p_tenant, usr.id, p_period_start, p_period_end) ON CONFLICT DO NOTHING;
        SELECT * INTO uctr FROM spend_counters c
         WHERE c.tenant_id = p_tenant AND c.end_user_id = usr.id
           AND c.period_start = p_period_start
           FOR UPDATE;
        IF usr.ulimit IS NOT NULL AND uctr.spent_usd + uctr.reserved_usd + usr.amount > usr.ulimit
        THEN
            RETURN QUERY SELECT 'user_budget'::text, 0, lim.budget, ctr.spent_usd,
                ctr.reserved_usd, lim.rpm, CEIL(weighted)::integer, lim.conc, ctr.in_flight,
                usr.ulimit, uctr.spent_usd;
            RETURN;
        END IF;
    END LOOP;
    UPDATE spend_counters c SET reserved_usd = c.reserved_usd + s.amount
      FROM (SELECT end_user_id, sum(amount) AS amount
              FROM unnest(p_users, amounts) AS r(end_user_id, amount)
             WHERE end_user_id IS NOT NULL GROUP BY end_user_id) s
     WHERE c.tenant_id = p_tenant AND c.end_user_id = s.end_user_id
       AND c.period_start = p_period_start;
    UPDATE spend_counters SET reserved_usd = reserved_usd + total WHERE id = ctr.id;
    INSERT INTO rate_windows AS w (api_key_id, window_start, count) VALUES (p_key, win, 1)
        ON CONFLICT (api_key_id, window_start) DO UPDATE SET count = w.count + 1;
    INSERT INTO batches (id, tenant_id, api_key_id, state, created_at, period_start,
                         period_end, request_count, reserved_usd, owner)
    VALUES (p_batch, p_tenant, p_key, 'submitting', p_started, p_period_start, p_period_end,
            cardinality(p_custom_ids), total, p_owner);
    INSERT INTO batch_requests (batch_id, custom_id, end_user_id, model, reserved_usd)
    SELECT p_batch, c, u, m, a
      FROM unnest(p_custom_ids, p_users, p_models, amounts) AS x(c, u, m, a);
    RETURN QUERY SELECT 'ok'::text, 0, lim.budget, ctr.spent_usd, ctr.reserved_usd + total,
        lim.rpm, CEIL(weighted + 1)::integer, lim.conc, ctr.in_flight, NULL::numeric,
        NULL::numeric;
END
$$;
"""

SETTLE_BATCH_RESULT = r"""
CREATE FUNCTION tollgate_settle_batch_result(
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
        tenant_id, day, api_key_id, end_user_id, model, requests, input_tokens,
        output_tokens, cache_write_5m_tokens, cache_write_1h_tokens, cache_read_tokens,
        web_search_requests, cost_usd)
    VALUES (req.tenant_id, row_day, req.api_key_id, req.end_user_id, req.model, 1, p_input,
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

RELEASE_BATCH = r"""
CREATE FUNCTION tollgate_release_batch(p_batch uuid, p_state text)
RETURNS numeric
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    b record;
    left_over numeric;
BEGIN
    SELECT * INTO b FROM batches WHERE id = p_batch FOR UPDATE;
    IF NOT FOUND OR b.state IN ('failed', 'settled') THEN
        RETURN 0;
    END IF;
    -- Requests without a ledger row still hold their reservation: give it back.
    SELECT COALESCE(sum(r.reserved_usd), 0) INTO left_over FROM batch_requests r
     WHERE r.batch_id = p_batch
       AND NOT EXISTS (SELECT 1 FROM usage_ledger l
                        WHERE l.batch_id = p_batch AND l.custom_id = r.custom_id);
    UPDATE spend_counters SET reserved_usd = reserved_usd - left_over
     WHERE tenant_id = b.tenant_id AND end_user_id IS NULL AND period_start = b.period_start;
    UPDATE spend_counters c SET reserved_usd = c.reserved_usd - s.amount
      FROM (SELECT r.end_user_id, sum(r.reserved_usd) AS amount FROM batch_requests r
             WHERE r.batch_id = p_batch AND r.end_user_id IS NOT NULL
               AND NOT EXISTS (SELECT 1 FROM usage_ledger l
                                WHERE l.batch_id = p_batch AND l.custom_id = r.custom_id)
             GROUP BY r.end_user_id) s
     WHERE c.tenant_id = b.tenant_id AND c.end_user_id = s.end_user_id
       AND c.period_start = b.period_start;
    UPDATE batches SET state = p_state, reserved_usd = 0, settled_at = now()
     WHERE id = p_batch;
    RETURN left_over;
END
$$;
"""


def _status_check(statuses: tuple[str, ...]) -> str:
    return "status IN (" + ", ".join(f"'{s}'" for s in statuses) + ")"


def upgrade() -> None:
    money = sa.Numeric(precision=20, scale=10)
    op.create_table(
        "files",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("tenant_id", sa.UUID(), nullable=False),
        sa.Column("api_key_id", sa.UUID(), nullable=False),
        sa.Column("filename", sa.Text(), nullable=True),
        sa.Column("mime_type", sa.Text(), nullable=True),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("downloadable", sa.Boolean(), nullable=True),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_files_tenant_id_tenants")
        ),
        sa.ForeignKeyConstraint(
            ["api_key_id"], ["api_keys.id"], name=op.f("fk_files_api_key_id_api_keys")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_files")),
    )
    op.create_index("ix_files_tenant_created", "files", ["tenant_id", "created_at"])
    op.create_table(
        "batches",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("upstream_id", sa.Text(), nullable=True),
        sa.Column("tenant_id", sa.UUID(), nullable=False),
        sa.Column("api_key_id", sa.UUID(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("period_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("period_end", sa.DateTime(timezone=True), nullable=False),
        sa.Column("request_count", sa.Integer(), nullable=False),
        sa.Column("reserved_usd", money, server_default="0", nullable=False),
        sa.Column("results_done", sa.Integer(), server_default="0", nullable=False),
        sa.Column("owner", sa.Text(), nullable=True),
        sa.Column("settled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "state IN ('submitting', 'submitted', 'settled', 'failed')",
            name=op.f("ck_batches_state"),
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_batches_tenant_id_tenants")
        ),
        sa.ForeignKeyConstraint(
            ["api_key_id"], ["api_keys.id"], name=op.f("fk_batches_api_key_id_api_keys")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_batches")),
        sa.UniqueConstraint("upstream_id", name=op.f("uq_batches_upstream_id")),
    )
    op.create_index("ix_batches_tenant_created", "batches", ["tenant_id", "created_at"])
    op.create_index(
        "ix_batches_unsettled",
        "batches",
        ["created_at"],
        postgresql_where=sa.text("state IN ('submitting', 'submitted')"),
    )
    op.create_table(
        "batch_requests",
        sa.Column("batch_id", sa.UUID(), nullable=False),
        sa.Column("custom_id", sa.Text(), nullable=False),
        sa.Column("end_user_id", sa.UUID(), nullable=True),
        sa.Column("model", sa.Text(), nullable=False),
        sa.Column("reserved_usd", money, nullable=False),
        sa.ForeignKeyConstraint(
            ["batch_id"],
            ["batches.id"],
            name=op.f("fk_batch_requests_batch_id_batches"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["end_user_id"], ["end_users.id"], name=op.f("fk_batch_requests_end_user_id_end_users")
        ),
        sa.PrimaryKeyConstraint("batch_id", "custom_id", name=op.f("pk_batch_requests")),
    )
    op.add_column("usage_ledger", sa.Column("batch_id", sa.UUID(), nullable=True))
    op.add_column("usage_ledger", sa.Column("custom_id", sa.Text(), nullable=True))
    op.create_index(
        "uq_usage_ledger_batch_request",
        "usage_ledger",
        ["batch_id", "custom_id"],
        unique=True,
        postgresql_where=sa.text("batch_id IS NOT NULL"),
    )
    op.drop_constraint(op.f("ck_usage_ledger_status"), "usage_ledger", type_="check")
    op.create_check_constraint("status", "usage_ledger", _status_check(NEW_STATUSES))
    op.execute(RESERVE_BATCH)
    op.execute(SETTLE_BATCH_RESULT)
    op.execute(RELEASE_BATCH)


def downgrade() -> None:
    op.execute("DROP FUNCTION tollgate_release_batch(uuid, text)")
    op.execute(
        "DROP FUNCTION tollgate_settle_batch_result(uuid, text, text, text, bigint, bigint, "
        "bigint, bigint, bigint, bigint, numeric, text, timestamptz, text, text)"
    )
    op.execute(
        "DROP FUNCTION tollgate_reserve_batch(uuid, uuid, uuid, timestamptz, timestamptz, "
        "timestamptz, text, text[], uuid[], text[], numeric[], numeric[])"
    )
    # Batch rows stay in the ledger (the rollups count them); the new statuses fold back.
    op.execute(
        "UPDATE usage_ledger SET status = 'upstream_error' WHERE status IN ('canceled', 'expired')"
    )
    op.drop_constraint(op.f("ck_usage_ledger_status"), "usage_ledger", type_="check")
    op.create_check_constraint("status", "usage_ledger", _status_check(OLD_STATUSES))
    op.drop_index("uq_usage_ledger_batch_request", table_name="usage_ledger")
    op.drop_column("usage_ledger", "custom_id")
    op.drop_column("usage_ledger", "batch_id")
    op.drop_table("batch_requests")
    op.drop_table("batches")
    op.drop_table("files")
