-- W4 repeat: the SQL of a webhook whose webhook-id was seen before (20% of W4).
--
-- Written from bench/results/statements-W4-repeat.log, which every bench run captures again
-- (the service role logs its statements while one request is sent; the run's report warns
-- when the app's statement count no longer matches this script's). To capture by hand:
--   psql -U postgres -c "ALTER ROLE tenvoice_bench_app SET log_statement = 'all'"
--   (start the API on tenvoice_bench as tenvoice_bench_app, send one request)
--   grep 'tenvoice_bench_app@tenvoice_bench ' /var/log/postgresql/postgresql-15-main.log
--   psql -U postgres -c "ALTER ROLE tenvoice_bench_app RESET log_statement"
--
-- Run by bench/limits.py: pgbench -n -M prepared -c16 -j2 -T<s> -D tenants=<n> ...,
-- as tenvoice_bench_app (row-level security binds it as it binds the app). Where the app
-- sends several statements in one message (BEGIN and set_config as one simple query; an
-- executemany), they are a pgbench pipeline here: one round trip either way.
--
-- The inbox insert collides with :repeated_id, a row bench/limits.py enters beforehand.
\set n random(1, :payments)
SELECT payment_routes.tenant_id
FROM payment_routes
WHERE payment_routes.payment_id = (SELECT payment_id FROM bench_pg_payments WHERE n = :n) \gset
\startpipeline
BEGIN ISOLATION LEVEL READ COMMITTED;
SELECT set_config('app.tenant_id', :tenant_id::text, true);
\endpipeline
INSERT INTO inbox_messages (source, message_id, tenant_id, message_type, outcome, received_at)
VALUES ('gateway', :repeated_id, :tenant_id, 'payment.succeeded', 'processed', now())
ON CONFLICT (source, message_id) DO NOTHING
RETURNING inbox_messages.message_id;
COMMIT;
