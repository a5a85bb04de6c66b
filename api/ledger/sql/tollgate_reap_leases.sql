-- The current definition of tollgate_reap_leases (defined by
-- migrations/versions/2026-11-30-1700_leases.py). Return the leases of processes whose
-- heartbeat went stale, exactly once: each lease is deleted (DELETE … RETURNING, so two
-- reapers can never both return it) in the same transaction as the counter update, after the
-- counter rows are locked (tenant, then user: the lock order of every ledger function).
-- Returns how many leases were reaped.
-- tests/ledger/test_sql_functions.py compares this file with the migrated database.
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
