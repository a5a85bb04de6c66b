-- The current definition of tollgate_lease_refill (defined by
-- migrations/versions/2026-11-30-1840_lease_refill.py). One statement per refill on the
-- request path: take (or top up) an escrow lease, with the tenant's concurrency slots (tenant
-- leases) and rpm permits for one key, and return the limits the process needs to admit
-- against it (quota mode, budget, rpm, concurrency, the end user's budget) and where the
-- tenant stands after the grant (for the quota headers).
-- Rules (lock order and accounting as tollgate_reserve's: tenant row, user row, lease):
--  * nothing is granted unless the tenant's concurrency limit is at least p_min_slots and its
--    rpm limit at least p_min_rpm per live process: small limits are decided per request
--    (tollgate_reserve), exactly, with no slice held anywhere;
--  * money: at most the remainder divided by the live processes, and nothing below p_min_usd
--    (several worst cases: anti-stranding);
--  * slots (tenant leases only) and permits only while the lease holds money (or, for a
--    slot-only top-up, p_want_usd = 0, which the caller asks only while a user lease of this
--    tenant holds money), so a tenant near its budget holds no slot or permit either.
-- tests/ledger/test_sql_functions.py compares this file with the migrated database.
CREATE OR REPLACE FUNCTION tollgate_lease_refill(
    p_lease uuid, p_new boolean, p_owner text, p_tenant uuid, p_user uuid, p_key uuid,
    p_period_start timestamptz, p_period_end timestamptz, p_want_usd numeric,
    p_min_usd numeric, p_want_slots integer, p_min_slots integer, p_want_permits integer,
    p_min_rpm integer, p_stale_s double precision)
RETURNS TABLE (granted_usd numeric, granted_slots integer, lost boolean, permits integer,
               permit_seconds_left double precision, mode text, budget numeric,
               spent numeric, reserved numeric, rpm integer, concurrency integer,
               in_flight integer, user_budget numeric, user_spent numeric, live integer)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    lim record;
    ctr record;
    uctr record;
    ulimit numeric;
    u_spent numeric;
    n_live integer;
    avail numeric;
    held numeric := 0;
    roomy boolean;
    g_usd numeric := 0;
    g_slots integer := 0;
    g_permits integer := 0;
    win timestamptz := date_trunc('minute', now());
    into_minute numeric := extract(epoch FROM now() - date_trunc('minute', now()));
    cur_count integer;
    prev_count integer;
BEGIN
    SELECT COALESCE(t.monthly_budget_usd, p.monthly_budget_usd) AS budget,
           COALESCE(t.rpm_limit, p.rpm_limit) AS rpm,
           COALESCE(t.max_concurrent, p.max_concurrent) AS conc,
           COALESCE(t.quota_mode, p.quota_mode) AS mode,
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
        u_spent := uctr.spent_usd;
        IF ulimit IS NOT NULL THEN
            avail := LEAST(avail, ulimit - uctr.spent_usd - uctr.reserved_usd);
        END IF;
    END IF;

    IF NOT p_new THEN
        SELECT b.amount_usd INTO held FROM budget_leases b
         WHERE b.tenant_id = p_tenant AND b.id = p_lease
           FOR UPDATE;
        IF NOT FOUND THEN
            RETURN QUERY SELECT 0::numeric, 0, true, 0, 0::double precision, lim.mode::text,
                lim.budget, ctr.spent_usd, ctr.reserved_usd, lim.rpm, lim.conc, ctr.in_flight,
                ulimit, u_spent, n_live;
            RETURN;
        END IF;
    END IF;

    roomy := lim.conc >= p_min_slots * n_live AND lim.rpm >= p_min_rpm * n_live;
    IF roomy THEN
        g_usd := LEAST(p_want_usd, trunc(GREATEST(avail, 0) / n_live, 10));
        IF g_usd < p_min_usd OR g_usd <= 0 THEN
            g_usd := 0;
        END IF;
        IF p_user IS NULL AND p_want_slots > 0 AND (g_usd > 0 OR held > 0 OR p_want_usd = 0) THEN
            g_slots := LEAST(p_want_slots, GREATEST(lim.conc - ctr.in_flight, 0) / n_live);
        END IF;
    END IF;
    IF g_usd > 0 OR g_slots > 0 THEN
        UPDATE spend_counters
           SET reserved_usd = reserved_usd + g_usd, in_flight = in_flight + g_slots
         WHERE id = ctr.id;
        IF p_user IS NOT NULL THEN
            UPDATE spend_counters SET reserved_usd = reserved_usd + g_usd WHERE id = uctr.id;
        END IF;
        INSERT INTO budget_leases AS b (tenant_id, id, owner, end_user_id, period_start,
                                        amount_usd, slots)
        VALUES (p_tenant, p_lease, p_owner, p_user, p_period_start, g_usd, g_slots)
        ON CONFLICT (tenant_id, id) DO UPDATE
           SET amount_usd = b.amount_usd + excluded.amount_usd,
               slots = b.slots + excluded.slots, updated_at = now();
    END IF;

    -- rpm permits of one key, as tollgate_lease_permits grants them (the weighted window of
    -- this minute and the last stays <= rpm with the grant counted).
    IF roomy AND p_key IS NOT NULL AND p_want_permits > 0 AND (g_usd > 0 OR held > 0) THEN
        SELECT COALESCE(sum(w.count) FILTER (WHERE w.window_start = win), 0),
               COALESCE(sum(w.count) FILTER (WHERE w.window_start = win - interval '1 minute'),
                        0)
          INTO cur_count, prev_count
          FROM rate_windows w
         WHERE w.api_key_id = p_key AND w.window_start >= win - interval '1 minute';
        g_permits := LEAST(p_want_permits,
                           FLOOR((lim.rpm - cur_count - prev_count * (60 - into_minute) / 60)
                                 / n_live)::integer);
        IF g_permits IS NULL OR g_permits < 0 THEN
            g_permits := 0;
        END IF;
        IF g_permits > 0 THEN
            INSERT INTO rate_windows AS w (api_key_id, window_start, count)
            VALUES (p_key, win, g_permits)
            ON CONFLICT (api_key_id, window_start) DO UPDATE SET count = w.count + g_permits;
        END IF;
    END IF;
    RETURN QUERY SELECT g_usd, g_slots, false, g_permits, (60 - into_minute)::double precision,
        lim.mode::text, lim.budget, ctr.spent_usd, ctr.reserved_usd + g_usd, lim.rpm, lim.conc,
        ctr.in_flight + g_slots, ulimit, u_spent, n_live;
END
$$;
