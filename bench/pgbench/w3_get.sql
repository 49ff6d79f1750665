-- W3: the SQL of one `GET /api/invoices/{id}` (the invoice and its items).
--
-- Written from bench/results/statements-W3.log, which every bench run captures again
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
-- The service caches API keys, so a request of a tenant it has seen sends no key lookup, and
-- neither does this script: the tenant comes from bench_pg_* inside the set_config the app
-- sends anyway, and later statements read it back with bench_tenant() (the setting, as
-- the row-level security policies read it) where the app binds it as a parameter.
-- A random (tenant, sampled invoice) pair, as W3 picks them.
\set n random(1, :invoices)
\startpipeline
BEGIN ISOLATION LEVEL READ COMMITTED;
SELECT set_config('app.tenant_id', (SELECT tenant_id::text FROM bench_pg_invoices WHERE n = :n), true);
\endpipeline
SELECT invoices.tenant_id, invoices.id, invoices.number, invoices.customer_id, invoices.currency,
       invoices.status, invoices.issue_date, invoices.due_date, invoices.subtotal, invoices.tax,
       invoices.total, invoices.amount_paid, invoices.amount_pending, invoices.memo,
       invoices.metadata, invoices.created_at, invoices.updated_at, invoices.finalized_at,
       invoices.sent_at, invoices.paid_at, invoices.voided_at, invoices.marked_uncollectible_at,
       invoices.overdue_at, invoices.number_sort,
       invoice_items.tenant_id AS item_tenant_id, invoice_items.id AS item_id,
       invoice_items.invoice_id AS item_invoice_id, invoice_items.position AS item_position,
       invoice_items.description AS item_description, invoice_items.quantity AS item_quantity,
       invoice_items.unit_price AS item_unit_price, invoice_items.tax_rate AS item_tax_rate,
       invoice_items.subtotal AS item_subtotal, invoice_items.tax AS item_tax,
       invoice_items.total AS item_total
FROM invoices
LEFT OUTER JOIN invoice_items ON invoice_items.tenant_id = invoices.tenant_id
     AND invoice_items.invoice_id = invoices.id AND invoice_items.tenant_id = bench_tenant()
WHERE invoices.id = (SELECT invoice_id FROM bench_pg_invoices WHERE n = :n)
  AND invoices.tenant_id = bench_tenant()
ORDER BY invoice_items.position;
ROLLBACK;
