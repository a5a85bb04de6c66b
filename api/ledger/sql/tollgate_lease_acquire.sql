-- The current definition of tollgate_lease_acquire (defined by
-- migrations/versions/2026-11-30-1700_leases.py). Take (or top up) an escrow lease: a slice of
-- a tenant's (or one end user's) remaining budget and, for a tenant lease, concurrency slots,
-- that the owning process then admits requests against in memory. Under the same counter row
-- locks as tollgate_reserve (tenant row, then user row, then the lease): the grant is counted
-- into the counters' reserved_usd and in_flight, so every per-request check (tollgate_reserve,
-- tollgate_reserve_batch) sees it and spent + reserved (leases included) <= limit holds.
-- Anti-stranding: a grant is at most the remaining budget (slots) divided by the number of
-- live processes, and nothing when that is below p_min_usd (one request's worst case): the
-- caller then reserves per request. p_new = false refills an existing lease: if it is gone
-- (the reaper took it), nothing is granted and lost = true.
-- tests/ledger/test_sql_functions.py compares this file with the migrated database.
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
