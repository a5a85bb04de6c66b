-- The current definition of tollgate_lease_return (defined by
-- migrations/versions/2026-11-30-1700_leases.py). Give back what a lease holds beyond what its
-- owner still needs (p_keep_usd: the worst cases of its requests in flight; p_keep_slots:
-- their slots): the lease shrinks to at most that, the counters are released by the
-- difference, and a lease left with nothing is deleted. Idle leases, shutdown and a lease the
-- owner stopped trusting all come back this way. A lease that is gone (reaped) returns 0.
-- Locks: counter rows (tenant, then user), then the lease, as everywhere.
-- tests/ledger/test_sql_functions.py compares this file with the migrated database.
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
