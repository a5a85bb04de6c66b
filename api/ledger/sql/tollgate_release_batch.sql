-- The current definition of tollgate_release_batch (created by
-- migrations/versions/2026-11-30-1400_batches_files.py). Give back what a batch still holds:
-- the reservation of every request that has no ledger row (a submission the upstream refused,
-- or results that never came), from the tenant's and end users' counters; then close the batch
-- as `failed` or `settled`. Once: a closed batch returns 0. tests/ledger/test_sql_functions.py
-- compares this file with the migrated database: a migration that redefines the function
-- updates this file too.
CREATE OR REPLACE FUNCTION tollgate_release_batch(p_batch uuid, p_state text)
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
