"""key policies: expiry, a model allow-list, a monthly budget, last use, scheduled revocation.

* `api_keys`: `expires_at` (401 once past), `allowed_models` (ids or fnmatch patterns; 403),
  `monthly_budget_usd` (402), `last_used_at` (written in batches, not per request). A
  `revoked_at` in the future schedules the revocation (rotation): the key works until then.
* `key_spend`: per key with a budget and per budget period, the spend and in-flight
  reservations of its ledger rows. A deferred constraint trigger on `usage_ledger` keeps it equal
  to them on every insert, update and delete (settle, void, reap, recost, batch results), firing
  at commit, so after the tenant counter row every ledger function locks first (one lock order:
  tenant, end user, key).
* `tollgate_reserve` checks the key's budget under that lock, after the end user's, and gains
  `key_budget`, `key_spent` in its answer (outcome `key_budget`).

Revision ID: f2b3c4d5e6a7
Revises: e6a8c0b2d4f6
Create Date: 2026-11-30 18:20:00+00:00
"""

import importlib.util
from collections.abc import Sequence
from pathlib import Path

import sqlalchemy as sa
from alembic import op

revision: str = "f2b3c4d5e6a7"
down_revision: str | None = "e6a8c0b2d4f6"  # after lease_permits (linear history)
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

RESERVE_SIGNATURE = (
    "tollgate_reserve(uuid, uuid, uuid, uuid, text, text, timestamptz, timestamptz, "
    "timestamptz, numeric, numeric, text)"
)

KEY_SPEND_TRIGGER = r"""
CREATE FUNCTION tollgate_key_spend() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    k uuid;
    p timestamptz;
    d_spent numeric := 0;
    d_reserved numeric := 0;
BEGIN
    IF TG_OP <> 'DELETE' THEN
        k := NEW.api_key_id;
        p := NEW.period_start;
        d_spent := CASE WHEN NEW.status <> 'in_flight' THEN NEW.cost_usd ELSE 0 END;
        d_reserved := CASE WHEN NEW.status = 'in_flight' THEN NEW.reserved_usd ELSE 0 END;
    END IF;
    IF TG_OP <> 'INSERT' THEN
        k := OLD.api_key_id;
        p := OLD.period_start;
        d_spent := d_spent - CASE WHEN OLD.status <> 'in_flight' THEN OLD.cost_usd ELSE 0 END;
        d_reserved := d_reserved
            - CASE WHEN OLD.status = 'in_flight' THEN OLD.reserved_usd ELSE 0 END;
    END IF;
    IF p IS NULL OR (d_spent = 0 AND d_reserved = 0) THEN
        RETURN NULL;
    END IF;
    UPDATE key_spend
       SET spent_usd = spent_usd + d_spent, reserved_usd = reserved_usd + d_reserved
     WHERE api_key_id = k AND period_start = p;
    RETURN NULL;
END
$$;
"""

RESERVE = r"""
CREATE FUNCTION tollgate_reserve(
    p_id uuid, p_tenant uuid, p_key uuid, p_user uuid, p_endpoint text, p_model text,
    p_started timestamptz, p_period_start timestamptz, p_period_end timestamptz,
    p_hard numeric, p_soft numeric, p_owner text)
RETURNS TABLE (outcome text, retry_after integer, budget numeric, spent numeric,
               reserved numeric, rpm integer, rpm_used integer, concurrency integer,
               in_flight integer, user_budget numeric, user_spent numeric,
               key_budget numeric, key_spent numeric)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    lim record;
    ctr record;
    uctr record;
    kctr record;
    kbudget numeric;
    k_spent numeric;
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
            lim.rpm, NULL::integer, lim.conc, ctr.in_flight, NULL::numeric, NULL::numeric,
            NULL::numeric, NULL::numeric;
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
            lim.conc, ctr.in_flight, NULL::numeric, NULL::numeric, NULL::numeric, NULL::numeric;
        RETURN;
    END IF;

    IF ctr.spent_usd + ctr.reserved_usd + amount > lim.budget THEN
        RETURN QUERY SELECT 'budget'::text, 0, lim.budget, ctr.spent_usd, ctr.reserved_usd,
            lim.rpm, CEIL(weighted)::integer, lim.conc, ctr.in_flight,
            NULL::numeric, NULL::numeric, NULL::numeric, NULL::numeric;
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
                ulimit, uctr.spent_usd, NULL::numeric, NULL::numeric;
            RETURN;
        END IF;
        u_spent := uctr.spent_usd;
    END IF;

    -- The key's own budget, last (lock order: tenant, end user, key). Its counter row is
    -- created from the key's ledger rows of the period the first time it is needed; the
    -- tenant row lock held here keeps every settle of this tenant out meanwhile.
    SELECT k.monthly_budget_usd INTO kbudget FROM api_keys k WHERE k.id = p_key;
    IF kbudget IS NOT NULL THEN
        SELECT * INTO kctr FROM key_spend s
         WHERE s.api_key_id = p_key AND s.period_start = p_period_start FOR UPDATE;
        IF NOT FOUND THEN
            INSERT INTO key_spend (api_key_id, period_start, spent_usd, reserved_usd)
            SELECT p_key, p_period_start,
                   COALESCE(sum(l.cost_usd) FILTER (WHERE l.status <> 'in_flight'), 0),
                   COALESCE(sum(l.reserved_usd) FILTER (WHERE l.status = 'in_flight'), 0)
              FROM usage_ledger l
             WHERE l.api_key_id = p_key AND l.period_start = p_period_start
            ON CONFLICT DO NOTHING;
            SELECT * INTO kctr FROM key_spend s
             WHERE s.api_key_id = p_key AND s.period_start = p_period_start FOR UPDATE;
        END IF;
        IF kctr.spent_usd + kctr.reserved_usd + amount > kbudget THEN
            RETURN QUERY SELECT 'key_budget'::text, 0, lim.budget, ctr.spent_usd,
                ctr.reserved_usd, lim.rpm, CEIL(weighted)::integer, lim.conc, ctr.in_flight,
                ulimit, u_spent, kbudget, kctr.spent_usd;
            RETURN;
        END IF;
        k_spent := kctr.spent_usd;
    END IF;

    IF p_user IS NOT NULL THEN
        UPDATE spend_counters SET reserved_usd = reserved_usd + amount WHERE id = uctr.id;
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
        ulimit, u_spent, kbudget, k_spent;
END
$$;
"""


def upgrade() -> None:
    op.add_column("api_keys", sa.Column("expires_at", sa.DateTime(timezone=True)))
    op.add_column("api_keys", sa.Column("allowed_models", sa.ARRAY(sa.Text())))
    op.add_column("api_keys", sa.Column("monthly_budget_usd", sa.Numeric(20, 10)))
    op.add_column("api_keys", sa.Column("last_used_at", sa.DateTime(timezone=True)))
    op.create_check_constraint(
        op.f("ck_api_keys_budget_non_negative"), "api_keys", "monthly_budget_usd >= 0"
    )
    op.create_table(
        "key_spend",
        sa.Column("api_key_id", sa.UUID(), nullable=False),
        sa.Column("period_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("spent_usd", sa.Numeric(20, 10), server_default="0", nullable=False),
        sa.Column("reserved_usd", sa.Numeric(20, 10), server_default="0", nullable=False),
        sa.ForeignKeyConstraint(
            ["api_key_id"],
            ["api_keys.id"],
            name=op.f("fk_key_spend_api_key_id_api_keys"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("api_key_id", "period_start", name=op.f("pk_key_spend")),
    )
    op.execute(KEY_SPEND_TRIGGER)
    op.execute(
        "CREATE CONSTRAINT TRIGGER usage_ledger_key_spend "
        "AFTER INSERT OR UPDATE OR DELETE ON usage_ledger "
        "DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION tollgate_key_spend()"
    )
    op.execute(f"DROP FUNCTION {RESERVE_SIGNATURE}")
    op.execute(RESERVE)


def downgrade() -> None:
    op.execute(f"DROP FUNCTION {RESERVE_SIGNATURE}")
    path = Path(__file__).with_name("2026-11-20-2300_quotas.py")
    spec = importlib.util.spec_from_file_location("quotas_migration", path)
    assert spec is not None and spec.loader is not None
    previous = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(previous)
    op.execute(previous.RESERVE)
    op.execute("DROP TRIGGER usage_ledger_key_spend ON usage_ledger")
    op.execute("DROP FUNCTION tollgate_key_spend()")
    op.drop_table("key_spend")
    op.drop_constraint(op.f("ck_api_keys_budget_non_negative"), "api_keys", type_="check")
    for column in ("last_used_at", "monthly_budget_usd", "allowed_models", "expires_at"):
        op.drop_column("api_keys", column)
