-- The current definition of tollgate_lease_permits (defined by
-- migrations/versions/2026-11-30-1810_lease_permits.py). Lease rpm permits for one key: up to
-- p_want requests of the current minute are counted now (as if they had all started), so the
-- sliding-window check every process runs (tollgate_reserve's weighted count of this minute
-- and the last) already sees them; the owning process may start that many requests before
-- the minute ends, without asking again. Under the tenant's counter row lock, like
-- tollgate_reserve, so the two never both count the last permit. A grant is at most what the
-- window has left divided by the live processes; unused permits are simply not used (they
-- make the window stricter, never looser).
-- tests/ledger/test_sql_functions.py compares this file with the migrated database.
CREATE OR REPLACE FUNCTION tollgate_lease_permits(
    p_tenant uuid, p_key uuid, p_period_start timestamptz, p_period_end timestamptz,
    p_want integer, p_stale_s double precision)
RETURNS TABLE (granted integer, window_start timestamptz, seconds_left double precision)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    lim_rpm integer;
    win timestamptz := date_trunc('minute', now());
    into_minute numeric := extract(epoch FROM now() - date_trunc('minute', now()));
    cur_count integer;
    prev_count integer;
    n_live integer;
    g integer;
BEGIN
    SELECT COALESCE(t.rpm_limit, p.rpm_limit) INTO lim_rpm
      FROM tenants t JOIN plans p ON p.code = t.plan_code
     WHERE t.id = p_tenant;
    PERFORM 1 FROM spend_counters c
     WHERE c.tenant_id = p_tenant AND c.end_user_id IS NULL AND c.period_start = p_period_start
       FOR UPDATE;
    IF NOT FOUND THEN
        INSERT INTO spend_counters (tenant_id, end_user_id, period_start, period_end)
        VALUES (p_tenant, NULL, p_period_start, p_period_end) ON CONFLICT DO NOTHING;
        PERFORM 1 FROM spend_counters c
         WHERE c.tenant_id = p_tenant AND c.end_user_id IS NULL
           AND c.period_start = p_period_start
           FOR UPDATE;
    END IF;
    SELECT GREATEST(1, count(*)) INTO n_live FROM server_heartbeats h
     WHERE h.last_seen > now() - make_interval(secs => p_stale_s);
    SELECT COALESCE(sum(w.count) FILTER (WHERE w.window_start = win), 0),
           COALESCE(sum(w.count) FILTER (WHERE w.window_start = win - interval '1 minute'), 0)
      INTO cur_count, prev_count
      FROM rate_windows w
     WHERE w.api_key_id = p_key AND w.window_start >= win - interval '1 minute';
    -- the weighted count must stay <= rpm with the grant added, as tollgate_reserve checks
    g := LEAST(p_want, FLOOR((lim_rpm - cur_count - prev_count * (60 - into_minute) / 60)
                             / n_live)::integer);
    IF g IS NULL OR g <= 0 THEN
        RETURN QUERY SELECT 0, win, (60 - into_minute)::double precision;
        RETURN;
    END IF;
    INSERT INTO rate_windows AS w (api_key_id, window_start, count) VALUES (p_key, win, g)
        ON CONFLICT (api_key_id, window_start) DO UPDATE SET count = w.count + g;
    RETURN QUERY SELECT g, win, (60 - into_minute)::double precision;
END
$$;
