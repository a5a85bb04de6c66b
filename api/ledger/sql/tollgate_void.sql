-- The current definition of tollgate_void (defined by
-- migrations/versions/2026-11-30-1500_void_orphans.py). Undo the reservation of a request
-- that never reached the upstream (its reserve committed after the caller had given up): the
-- in-flight row is deleted and its reservation and concurrency slot released, under the same
-- locks and in the same order as tollgate_settle (ledger row, tenant counter, user counter).
-- Returns false if the row is not in flight (settled meanwhile, or already voided).
-- tests/ledger/test_sql_functions.py compares this file with the migrated database.
CREATE OR REPLACE FUNCTION tollgate_void(p_id uuid)
RETURNS boolean
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    row record;
BEGIN
    SELECT l.tenant_id, l.end_user_id, l.reserved_usd, l.period_start INTO row
      FROM usage_ledger l WHERE l.id = p_id AND l.status = 'in_flight' FOR UPDATE;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    DELETE FROM usage_ledger WHERE id = p_id;
    IF row.period_start IS NOT NULL THEN
        UPDATE spend_counters
           SET reserved_usd = reserved_usd - row.reserved_usd, in_flight = in_flight - 1
         WHERE tenant_id = row.tenant_id AND end_user_id IS NULL
           AND period_start = row.period_start;
        IF row.end_user_id IS NOT NULL THEN
            UPDATE spend_counters SET reserved_usd = reserved_usd - row.reserved_usd
             WHERE tenant_id = row.tenant_id AND end_user_id = row.end_user_id
               AND period_start = row.period_start;
        END IF;
    END IF;
    RETURN true;
END
$$;
