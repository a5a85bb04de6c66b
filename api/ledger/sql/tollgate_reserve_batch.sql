-- The current definition of tollgate_reserve_batch (created by
-- migrations/versions/2026-11-30-1400_batches_files.py). Admit a whole Message Batch at once,
-- under the tenant's counter row lock: rpm counts the batch once, concurrency does not apply;
-- the tenant's budget is checked against the sum of every request's worst case (hard mode) or
-- estimate (soft), each end user against the sum of theirs. All or nothing: on `ok` the amounts
-- are reserved and the batch (state `submitting`) and its requests are written. The outcome
-- row has tollgate_reserve's shape. tests/ledger/test_sql_functions.py compares this file with
-- the migrated database: a migration that redefines the function updates this file too.
CREATE OR REPLACE FUNCTION tollgate_reserve_batch(
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
