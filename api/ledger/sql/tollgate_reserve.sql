-- The current definition of tollgate_reserve (last redefined by
-- migrations/versions/2026-11-30-1820_key_policies.py: a key's own monthly budget). Check every
-- limit of a request and, only if all pass, reserve its cost and open the in-flight ledger row,
-- under the tenant's counter row lock (then the end user's, then the key's: one lock order).
-- A key with a monthly budget is checked against its `key_spend` row, which the deferred
-- trigger `usage_ledger_key_spend` keeps equal to the key's ledger rows of the period (spent:
-- settled costs; reserved: in-flight reservations), so settle, void, reap and recost need no
-- change. Keys with a budget must always come through here (never an escrow lease).
-- tests/ledger/test_sql_functions.py compares this file with the migrated database: a
-- migration that redefines the function updates this file in the same change.
CREATE OR REPLACE FUNCTION tollgate_reserve(
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
