-- The current definition of tollgate_settle_batch_result (last redefined by
-- migrations/versions/2026-11-30-1800_rollup_endpoint.py: `usage_daily` per endpoint too).
-- Write one batch result's ledger row (endpoint `batch`, its custom_id, end user and
-- reservation from batch_requests), move its reservation to spend in the tenant's and the end
-- user's counters, take it off the batch, and add the row to the daily rollups, in one
-- transaction; at most once: the ledger's unique (batch_id, custom_id) makes a replay (a
-- restarted settler, another replica) return false and touch nothing.
-- tests/ledger/test_sql_functions.py compares this file with the migrated database: a
-- migration that redefines the function updates this file too.
CREATE OR REPLACE FUNCTION tollgate_settle_batch_result(
    p_batch uuid, p_custom_id text, p_status text, p_model text, p_input bigint,
    p_output bigint, p_cw5m bigint, p_cw1h bigint, p_cread bigint, p_web bigint,
    p_cost numeric, p_price_version text, p_ended_at timestamptz,
    p_upstream_request_id text, p_error_type text)
RETURNS boolean
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    req record;
    new_id uuid;
    row_day date;
BEGIN
    SELECT b.tenant_id, b.api_key_id, b.created_at, b.period_start, r.end_user_id,
           r.reserved_usd, COALESCE(p_model, r.model) AS model INTO req
      FROM batch_requests r JOIN batches b ON b.id = r.batch_id
     WHERE r.batch_id = p_batch AND r.custom_id = p_custom_id;
    IF NOT FOUND THEN
        RETURN false;  -- not a request of this batch: nothing was reserved for it
    END IF;
    INSERT INTO usage_ledger (id, tenant_id, api_key_id, end_user_id, endpoint, model, status,
        input_tokens, output_tokens, cache_write_5m_tokens, cache_write_1h_tokens,
        cache_read_tokens, web_search_requests, cost_usd, reserved_usd, price_version,
        started_at, ended_at, upstream_request_id, error_type, period_start, batch_id,
        custom_id)
    VALUES (gen_random_uuid(), req.tenant_id, req.api_key_id, req.end_user_id, 'batch',
        req.model, p_status, p_input, p_output, p_cw5m, p_cw1h, p_cread, p_web, p_cost,
        req.reserved_usd, p_price_version, req.created_at, p_ended_at, p_upstream_request_id,
        p_error_type, req.period_start, p_batch, p_custom_id)
    ON CONFLICT (batch_id, custom_id) WHERE batch_id IS NOT NULL DO NOTHING
    RETURNING id INTO new_id;
    IF new_id IS NULL THEN
        RETURN false;  -- settled before (a replay, or another replica)
    END IF;
    UPDATE spend_counters
       SET spent_usd = spent_usd + p_cost, reserved_usd = reserved_usd - req.reserved_usd,
           requests = requests + 1
     WHERE tenant_id = req.tenant_id AND end_user_id IS NULL
       AND period_start = req.period_start;
    IF req.end_user_id IS NOT NULL THEN
        UPDATE spend_counters
           SET spent_usd = spent_usd + p_cost, reserved_usd = reserved_usd - req.reserved_usd,
               requests = requests + 1
         WHERE tenant_id = req.tenant_id AND end_user_id = req.end_user_id
           AND period_start = req.period_start;
    END IF;
    UPDATE batches SET reserved_usd = reserved_usd - req.reserved_usd WHERE id = p_batch;
    row_day := (req.created_at AT TIME ZONE 'UTC')::date;
    INSERT INTO usage_daily AS d (
        tenant_id, day, api_key_id, end_user_id, model, endpoint, requests, input_tokens,
        output_tokens, cache_write_5m_tokens, cache_write_1h_tokens, cache_read_tokens,
        web_search_requests, cost_usd)
    VALUES (req.tenant_id, row_day, req.api_key_id, req.end_user_id, req.model, 'batch', 1,
            p_input, p_output, p_cw5m, p_cw1h, p_cread, p_web, p_cost)
    ON CONFLICT (tenant_id, day, api_key_id, end_user_id, model, endpoint) DO UPDATE
       SET requests = d.requests + 1,
           input_tokens = d.input_tokens + excluded.input_tokens,
           output_tokens = d.output_tokens + excluded.output_tokens,
           cache_write_5m_tokens = d.cache_write_5m_tokens + excluded.cache_write_5m_tokens,
           cache_write_1h_tokens = d.cache_write_1h_tokens + excluded.cache_write_1h_tokens,
           cache_read_tokens = d.cache_read_tokens + excluded.cache_read_tokens,
           web_search_requests = d.web_search_requests + excluded.web_search_requests,
           cost_usd = d.cost_usd + excluded.cost_usd;
    INSERT INTO usage_daily_users AS d (
        tenant_id, day, end_user_id, requests, input_tokens, output_tokens,
        cache_write_5m_tokens, cache_write_1h_tokens, cache_read_tokens, web_search_requests,
        cost_usd)
    VALUES (req.tenant_id, row_day, req.end_user_id, 1, p_input, p_output, p_cw5m, p_cw1h,
            p_cread, p_web, p_cost)
    ON CONFLICT (tenant_id, day, end_user_id) DO UPDATE
       SET requests = d.requests + 1,
           input_tokens = d.input_tokens + excluded.input_tokens,
           output_tokens = d.output_tokens + excluded.output_tokens,
           cache_write_5m_tokens = d.cache_write_5m_tokens + excluded.cache_write_5m_tokens,
           cache_write_1h_tokens = d.cache_write_1h_tokens + excluded.cache_write_1h_tokens,
           cache_read_tokens = d.cache_read_tokens + excluded.cache_read_tokens,
           web_search_requests = d.web_search_requests + excluded.web_search_requests,
           cost_usd = d.cost_usd + excluded.cost_usd;
    RETURN true;
END
$$;
