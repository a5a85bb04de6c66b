"""The SQL behind `api.reports.seed` (one statement per constant; `$n` parameters)."""

from __future__ import annotations

SESSION_SETTINGS = (
    "SELECT set_config('work_mem', '256MB', true), "
    "set_config('maintenance_work_mem', '1GB', true), "
    "set_config('synchronous_commit', 'off', true), "
    "set_config('TimeZone', 'UTC', true)"
)

TEMP_TABLES = (
    "CREATE TEMP TABLE seed_t (ix int PRIMARY KEY, id uuid NOT NULL, u_first int NOT NULL, "
    "u_n int NOT NULL, n_keys int NOT NULL) ON COMMIT DROP",
    "CREATE TEMP TABLE seed_u (ix int PRIMARY KEY, id uuid NOT NULL) ON COMMIT DROP",
    "CREATE TEMP TABLE seed_k (tix int, n int, id uuid NOT NULL, PRIMARY KEY (tix, n)) "
    "ON COMMIT DROP",
    "CREATE TEMP TABLE seed_m (ix int PRIMARY KEY, model text NOT NULL, p_in numeric, "
    "p_out numeric, p_cw5 numeric, p_cw1 numeric, p_cr numeric, p_web numeric) ON COMMIT DROP",
)

# $1 index, $2 name, $3 first user index, $4 users, $5 keys: reuse the tenant of that name.
SEED_TENANT = """
WITH existing AS (
    SELECT id FROM tenants WHERE name = $2::text ORDER BY created_at, id LIMIT 1
), created AS (
    INSERT INTO tenants (id, name, plan_code)
    SELECT gen_random_uuid(), $2::text, 'pro' WHERE NOT EXISTS (SELECT 1 FROM existing)
    RETURNING id
)
INSERT INTO seed_t (ix, id, u_first, u_n, n_keys)
SELECT $1::int, id, $3::int, $4::int, $5::int FROM (
    SELECT id FROM existing UNION ALL SELECT id FROM created
) t
"""

SEED_USERS = (
    """
    INSERT INTO end_users (id, tenant_id, external_id)
    SELECT gen_random_uuid(), t.id, format('user-%s', lpad(n::text, 5, '0'))
      FROM seed_t t, generate_series(1, t.u_n) n
    ON CONFLICT (tenant_id, external_id) DO NOTHING
    """,
    """
    INSERT INTO seed_u (ix, id)
    SELECT t.u_first + n - 1, u.id
      FROM seed_t t
     CROSS JOIN generate_series(1, t.u_n) n
      JOIN end_users u
        ON u.tenant_id = t.id AND u.external_id = format('user-%s', lpad(n::text, 5, '0'))
    """,
)

# Keys nobody holds: their hashes are random bytes.
SEED_KEYS = (
    """
    INSERT INTO api_keys (id, tenant_id, name, key_hash, prefix)
    SELECT gen_random_uuid(), t.id, 'seed-key-' || n,
           decode(md5(random()::text) || md5(random()::text), 'hex'), 'tg_live_seed'
      FROM seed_t t, generate_series(1, t.n_keys) n
     WHERE NOT EXISTS (
        SELECT 1 FROM api_keys k WHERE k.tenant_id = t.id AND k.name = 'seed-key-' || n)
    """,
    """
    INSERT INTO seed_k (tix, n, id)
    SELECT t.ix, n - 1, (
        SELECT k.id FROM api_keys k WHERE k.tenant_id = t.id AND k.name = 'seed-key-' || n
         ORDER BY k.created_at, k.id LIMIT 1)
      FROM seed_t t, generate_series(1, t.n_keys) n
    """,
)

SEED_MODEL = (
    "INSERT INTO seed_m VALUES ($1::int, $2::text, $3::numeric, $4::numeric, $5::numeric, "
    "$6::numeric, $7::numeric, $8::numeric)"
)

ANALYZE_TEMP = "ANALYZE seed_t, seed_u, seed_k, seed_m"

# $1..$2 the row numbers of this chunk, $3 all rows, $4 start (epoch s), $5 span (s), $6 days,
# $7 tenant / $8 model / $9 status bucket bounds, $10 statuses, $11 price version, $12 the
# daily rhythm's phase. Row i's time grows with i (the ledger is appended in time order); the
# rate swings +-60% around its mean once a day.
LOAD_LEDGER = """
INSERT INTO usage_ledger (
    id, tenant_id, api_key_id, end_user_id, endpoint, model, status, input_tokens,
    output_tokens, cache_write_5m_tokens, cache_write_1h_tokens, cache_read_tokens,
    web_search_requests, cost_usd, reserved_usd, price_version, started_at, first_token_at,
    ended_at, upstream_request_id, http_status, error_type, owner, period_start)
SELECT gen_random_uuid(), z.tenant_id, k.id, u.id,
       CASE WHEN z.r_ep < 0.85 THEN 'messages' ELSE 'chat' END,
       m.model, z.status, z.inp, z.outp, z.cw5, z.cw1, z.crd, z.web,
       round((z.inp * m.p_in + z.outp * m.p_out + z.cw5 * m.p_cw5 + z.cw1 * m.p_cw1
              + z.crd * m.p_cr) / 1000000 + z.web * m.p_web / 1000, 10),
       round(((z.inp + z.cw5 + z.cw1 + z.crd) * m.p_cw1 + 4096 * m.p_out) / 1000000, 10),
       $11::text, z.ts,
       CASE WHEN z.outp > 0 THEN z.ts + make_interval(secs => 0.3 + z.r_dur) END,
       z.ts + make_interval(secs => 0.5 + z.outp * 0.012 + z.r_dur * 2),
       'req_seed_' || to_hex(z.i),
       CASE z.status WHEN 'upstream_error' THEN 529 WHEN 'timeout' THEN 504
                     WHEN 'abandoned' THEN NULL ELSE 200 END,
       CASE z.status WHEN 'upstream_error' THEN 'overloaded_error'
                     WHEN 'timeout' THEN 'timeout_error' WHEN 'abandoned' THEN 'abandoned' END,
       'seed', date_trunc('month', z.ts, 'UTC')
FROM (
    SELECT y.*,
           CASE WHEN y.r_nouser < 0.05 THEN NULL ELSE y.u_first + y.li END AS uix,
           CASE WHEN y.r_nouser < 0.05 OR y.r_home >= 0.85 THEN floor(y.r_key * y.n_keys)::int
                ELSE y.li % y.n_keys END AS kn,
           CASE WHEN y.status = 'abandoned' THEN 0 ELSE y.inp0 END AS inp,
           CASE y.status WHEN 'ok' THEN y.outp0 WHEN 'abandoned' THEN 0 WHEN 'timeout' THEN 0
                         WHEN 'upstream_error' THEN y.outp0 / 5
                         ELSE floor(y.outp0 * y.r_cut)::bigint END AS outp,
           CASE WHEN y.status = 'abandoned' THEN 0 ELSE y.cw50 END AS cw5,
           CASE WHEN y.status = 'abandoned' THEN 0 ELSE y.cw10 END AS cw1,
           CASE WHEN y.status = 'abandoned' THEN 0 ELSE y.crd0 END AS crd,
           CASE WHEN y.status = 'abandoned' THEN 0 ELSE y.web0 END AS web
    FROM (
        SELECT g.*, t.id AS tenant_id, t.u_first, t.n_keys,
               floor(t.u_n * power(g.r_user, 1.8))::int AS li,
               ($10::text[])[g.six + 1] AS status,
               to_timestamp($4::float8 + $5::float8 * (g.frac + 0.6 * (
                   sin(2 * pi() * $6::float8 * g.frac - $12::float8) + sin($12::float8))
                   / (2 * pi() * $6::float8))) AS ts
        FROM (
            SELECT i, (i + random()) / $3::bigint AS frac,
                   width_bucket(random(), $7::float8[]) AS tix,
                   width_bucket(random(), $8::float8[]) AS mix,
                   width_bucket(random(), $9::float8[]) AS six,
                   random() AS r_user, random() AS r_nouser, random() AS r_home,
                   random() AS r_key, random() AS r_ep, random() AS r_dur, random() AS r_cut,
                   40 + floor(-ln(1 - random()) * 1800)::bigint AS inp0,
                   least(8192, floor(-ln(1 - random()) * 380))::bigint AS outp0,
                   CASE WHEN random() < 0.12
                        THEN floor(-ln(1 - random()) * 1500)::bigint ELSE 0 END AS cw50,
                   CASE WHEN random() < 0.02
                        THEN floor(-ln(1 - random()) * 3000)::bigint ELSE 0 END AS cw10,
                   CASE WHEN random() < 0.35
                        THEN floor(-ln(1 - random()) * 6000)::bigint ELSE 0 END AS crd0,
                   CASE WHEN random() < 0.01 THEN 1 + floor(random() * 3)::bigint
                        ELSE 0 END AS web0
              FROM generate_series($1::bigint, $2::bigint) i
        ) g
        JOIN seed_t t ON t.ix = g.tix
    ) y
) z
LEFT JOIN seed_u u ON u.ix = z.uix
JOIN seed_k k ON k.tix = z.tix AND k.n = z.kn
JOIN seed_m m ON m.ix = z.mix
"""

# $1 a table: (kind, name, the statement that restores it) for its foreign keys, then its
# indexes, then its primary key unless another table references it. Restored in reverse.
TABLE_DDL = """
SELECT kind, name, restore FROM (
    SELECT CASE c.contype WHEN 'f' THEN 1 ELSE 3 END AS ord, 'constraint' AS kind,
           c.conname::text AS name,
           format('ALTER TABLE %s ADD CONSTRAINT %I %s', $1::regclass, c.conname,
                  pg_get_constraintdef(c.oid)) AS restore
      FROM pg_constraint c
     WHERE c.conrelid = $1::regclass
       AND (c.contype = 'f' OR (c.contype = 'p' AND NOT EXISTS (
            SELECT 1 FROM pg_constraint r WHERE r.confrelid = $1::regclass)))
    UNION ALL
    SELECT 2, 'index', i.relname::text, pg_get_indexdef(i.oid)
      FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid
     WHERE x.indrelid = $1::regclass
       AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = x.indexrelid
                                                    AND c.conrelid = x.indrelid)
) d ORDER BY ord, name
"""

BULK_TABLES = ("usage_ledger", "usage_daily", "usage_daily_users")

# $1: the seeded tenants. Their rollups and counters are rebuilt from the ledger, so they equal
# it exactly whatever was there before.
REBUILD = (
    "DELETE FROM usage_daily WHERE tenant_id = ANY($1::uuid[])",
    "DELETE FROM usage_daily_users WHERE tenant_id = ANY($1::uuid[])",
    """
    INSERT INTO usage_daily (
        tenant_id, day, api_key_id, end_user_id, model, endpoint, requests, input_tokens,
        output_tokens, cache_write_5m_tokens, cache_write_1h_tokens, cache_read_tokens,
        web_search_requests, cost_usd)
    SELECT tenant_id, (started_at AT TIME ZONE 'UTC')::date, api_key_id, end_user_id, model,
           endpoint, count(*), sum(input_tokens), sum(output_tokens),
           sum(cache_write_5m_tokens), sum(cache_write_1h_tokens), sum(cache_read_tokens),
           sum(web_search_requests), sum(cost_usd)
      FROM usage_ledger
     WHERE tenant_id = ANY($1::uuid[]) AND status <> 'in_flight'
     GROUP BY 2, 1, 3, 4, 5, 6
     ORDER BY 2
    """,
    """
    INSERT INTO usage_daily_users (
        tenant_id, day, end_user_id, requests, input_tokens, output_tokens,
        cache_write_5m_tokens, cache_write_1h_tokens, cache_read_tokens, web_search_requests,
        cost_usd)
    SELECT tenant_id, day, end_user_id, sum(requests), sum(input_tokens), sum(output_tokens),
           sum(cache_write_5m_tokens), sum(cache_write_1h_tokens), sum(cache_read_tokens),
           sum(web_search_requests), sum(cost_usd)
      FROM usage_daily
     WHERE tenant_id = ANY($1::uuid[])
     GROUP BY 2, 1, 3
     ORDER BY 2
    """,
    "DELETE FROM spend_counters WHERE tenant_id = ANY($1::uuid[])",
    """
    INSERT INTO spend_counters (tenant_id, end_user_id, period_start, period_end, spent_usd,
                                requests)
    SELECT tenant_id, end_user_id, period_start, period_start + interval '1 month',
           sum(cost_usd), count(*)
      FROM usage_ledger
     WHERE tenant_id = ANY($1::uuid[]) AND status <> 'in_flight' AND period_start IS NOT NULL
     GROUP BY GROUPING SETS ((tenant_id, period_start), (tenant_id, end_user_id, period_start))
    HAVING GROUPING(end_user_id) = 1 OR end_user_id IS NOT NULL
    """,
    """
    UPDATE tenants t
       SET monthly_budget_usd = GREATEST(100, ceil(c.busiest * 1.25))
      FROM (SELECT tenant_id, max(spent_usd) AS busiest FROM spend_counters
             WHERE tenant_id = ANY($1::uuid[]) AND end_user_id IS NULL GROUP BY tenant_id) c
     WHERE t.id = c.tenant_id
    """,
)

COUNTS = """
SELECT (SELECT count(*) FROM end_users WHERE tenant_id = ANY($1::uuid[])),
       (SELECT count(*) FROM api_keys WHERE tenant_id = ANY($1::uuid[])),
       (SELECT count(*) FROM usage_daily WHERE tenant_id = ANY($1::uuid[])),
       (SELECT count(*) FROM usage_daily_users WHERE tenant_id = ANY($1::uuid[]))
"""
