-- The current definition of tollgate_key_spend (defined by
-- migrations/versions/2026-11-30-1820_key_policies.py), the function of the deferred constraint
-- trigger `usage_ledger_key_spend`: on every insert, update and delete of a ledger row it moves
-- the row's change (spent: cost of a settled row; reserved: reservation of an in-flight row)
-- into the key's `key_spend` row of the period, if the key has one (keys with a budget).
-- Deferred to commit, so it locks the key row after the tenant's counter row, like
-- tollgate_reserve. tests/ledger/test_sql_functions.py compares this file with the database.
CREATE OR REPLACE FUNCTION tollgate_key_spend() RETURNS trigger
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
