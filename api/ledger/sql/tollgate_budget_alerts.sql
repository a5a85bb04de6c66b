-- The current definition of tollgate_budget_alerts (defined by
-- migrations/versions/2026-11-30-1830_budget_alerts.py), the function of the trigger
-- `spend_counters_budget_alerts`: when a settle (or re-cost) raises a counter's spend past one of
-- the tenant's alert thresholds (a percentage of the tenant's budget for the tenant row, of the
-- end user's budget for a user row), it queues one `alert_events` row, at most once per
-- threshold, period and subject (unique index; ON CONFLICT DO NOTHING). Tenants without alert
-- settings cost one primary-key probe. The sender (api/alerts/sender.py) delivers the queue.
-- tests/ledger/test_sql_functions.py compares this file with the database.
CREATE OR REPLACE FUNCTION tollgate_budget_alerts() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    cfg record;
    lim numeric;
    pct integer;
BEGIN
    SELECT a.thresholds INTO cfg FROM alert_settings a WHERE a.tenant_id = NEW.tenant_id;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    IF NEW.end_user_id IS NULL THEN
        SELECT COALESCE(t.monthly_budget_usd, p.monthly_budget_usd) INTO lim
          FROM tenants t JOIN plans p ON p.code = t.plan_code WHERE t.id = NEW.tenant_id;
    ELSE
        SELECT COALESCE(u.monthly_budget_usd, t.user_default_budget_usd) INTO lim
          FROM end_users u JOIN tenants t ON t.id = u.tenant_id WHERE u.id = NEW.end_user_id;
    END IF;
    IF lim IS NULL OR lim <= 0 THEN
        RETURN NULL;
    END IF;
    FOREACH pct IN ARRAY cfg.thresholds LOOP
        IF NEW.spent_usd >= lim * pct / 100 AND OLD.spent_usd < lim * pct / 100 THEN
            INSERT INTO alert_events (id, tenant_id, end_user_id, threshold_pct, period_start,
                                      period_end, limit_usd, spent_usd)
            VALUES (gen_random_uuid(), NEW.tenant_id, NEW.end_user_id, pct, NEW.period_start,
                    NEW.period_end, lim, NEW.spent_usd)
            ON CONFLICT DO NOTHING;
        END IF;
    END LOOP;
    RETURN NULL;
END
$$;
