-- W1: the SQL of one `POST /api/invoices` with 3 items and "finalize": true.
--
-- Written from bench/results/statements-W1.log, which every bench run captures again
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
\set n random(1, :tenants)
\startpipeline
BEGIN ISOLATION LEVEL READ COMMITTED;
SELECT set_config('app.tenant_id', (SELECT tenant_id::text FROM bench_pg_tenants WHERE n = :n), true);
\endpipeline
-- invoices/commands.py: the tenant and the customer, in one query
SELECT tenants.id, tenants.name, tenants.default_currency, tenants.invoice_prefix,
       tenants.default_tax_rate, tenants.created_at, tenants.updated_at, customers.tenant_id,
       customers.id AS id_1, customers.name AS name_1, customers.email, customers.phone,
       customers.address, customers.metadata, customers.created_at AS created_at_1,
       customers.updated_at AS updated_at_1, customers.deleted_at
FROM tenants
LEFT OUTER JOIN customers ON customers.tenant_id = tenants.id
     AND customers.id = (SELECT customer_id FROM bench_pg_tenants WHERE n = :n)
     AND customers.tenant_id = bench_tenant()
WHERE tenants.id = bench_tenant() \gset t_
INSERT INTO invoice_number_counters (tenant_id, year, last_value)
VALUES (:t_id, extract(year FROM now())::int, 1)
ON CONFLICT (tenant_id, year) DO UPDATE SET last_value = (invoice_number_counters.last_value + 1)
RETURNING invoice_number_counters.last_value \gset
-- credits/ledger.py: the customer's credit in the invoice's currency, locked (none here)
SELECT customer_balances.tenant_id, customer_balances.customer_id, customer_balances.currency,
       customer_balances.amount
FROM customer_balances
WHERE customer_balances.customer_id = :t_id_1 AND customer_balances.currency = 'USD'
      AND customer_balances.tenant_id = bench_tenant()
FOR UPDATE;
INSERT INTO invoices (tenant_id, id, number, number_sort, customer_id, currency, status,
                      issue_date, due_date, subtotal, tax, total, amount_paid, amount_pending,
                      memo, metadata, created_at, updated_at, finalized_at, sent_at, paid_at,
                      voided_at, marked_uncollectible_at, overdue_at)
VALUES (:t_id, bench_uuid7(),
        'INV-' || extract(year FROM now())::int::text || '-' || lpad(:last_value::text, 5, '0'),
        extract(year FROM now())::bigint * 1000000000000 + :last_value,
        :t_id_1, 'USD', 'open', current_date, current_date + 30, 2450, 270, 2720, 0, 0,
        NULL, '{}', now(), now(), now(), NULL, NULL, NULL, NULL, NULL)
RETURNING id AS invoice_id \gset
\startpipeline
INSERT INTO invoice_items (tenant_id, id, invoice_id, position, description, quantity,
                           unit_price, tax_rate, subtotal, tax, total)
VALUES (:t_id, bench_uuid7(), :invoice_id, 0, 'Item 0', 10000, 10000000, 110000, 1000, 110, 1110);
INSERT INTO invoice_items (tenant_id, id, invoice_id, position, description, quantity,
                           unit_price, tax_rate, subtotal, tax, total)
VALUES (:t_id, bench_uuid7(), :invoice_id, 1, 'Item 1', 20000, 5000000, 110000, 1000, 110, 1110);
INSERT INTO invoice_items (tenant_id, id, invoice_id, position, description, quantity,
                           unit_price, tax_rate, subtotal, tax, total)
VALUES (:t_id, bench_uuid7(), :invoice_id, 2, 'Item 2', 30000, 1500000, 110000, 450, 50, 500);
\endpipeline
-- events/log.py: both events, a delivery of each to every enabled endpoint subscribed to
-- them (each W1 tenant has one, subscribed to "*") and a dispatch job per endpoint, in one
-- statement. `data` is the event's fields plus the invoice's snapshot (`object`), JSON text
-- as the app sends it (about 1.4 KB each; bench_invoice_json() in bench/limits.py).
WITH logged AS
(INSERT INTO events (tenant_id, id, event_type, entity_type, entity_id, stream_id, occurred_at,
                     request_id, actor_type, actor_id, data)
 VALUES (:t_id, bench_uuid7(), 'invoice.created', 'invoice', :invoice_id, :invoice_id, now(),
         md5(random()::text), 'api_key', 'bench-key',
         ('{"total": "27.20", "currency": "USD", "invoiceId": "' || :invoice_id
          || '", "itemCount": 3, "customerId": "' || :t_id_1 || '", "object": '
          || bench_invoice_json(:invoice_id, :t_id_1, :last_value) || '}')::jsonb),
        (:t_id, bench_uuid7(), 'invoice.finalized', 'invoice', :invoice_id, :invoice_id, now(),
         md5(random()::text), 'api_key', 'bench-key',
         ('{"total": "27.20", "number": "INV-' || :last_value || '", "dueDate": "'
          || (current_date + 30) || '", "amountDue": "27.20", "invoiceId": "' || :invoice_id
          || '", "object": ' || bench_invoice_json(:invoice_id, :t_id_1, :last_value)
          || '}')::jsonb)
 RETURNING events.id, events.event_type),
queued AS
(INSERT INTO webhook_deliveries (tenant_id, id, endpoint_id, event_id, event_type, status,
                                 attempts, next_attempt_at, created_at, updated_at)
 SELECT :t_id::uuid, gen_random_uuid(), matched.endpoint_id, matched.event_id,
        matched.event_type, 'pending', 0, now(), now(), now()
 FROM (SELECT DISTINCT logged.id AS event_id, logged.event_type AS event_type,
              webhook_subscriptions.endpoint_id AS endpoint_id
       FROM logged
       JOIN webhook_subscriptions ON webhook_subscriptions.tenant_id = :t_id::uuid
            AND (webhook_subscriptions.pattern = logged.event_type
                 OR webhook_subscriptions.pattern = '*'
                 OR webhook_subscriptions.pattern = (split_part(logged.event_type, '.', 1) || '.*'))
       JOIN webhook_endpoints ON webhook_endpoints.tenant_id = webhook_subscriptions.tenant_id
            AND webhook_endpoints.id = webhook_subscriptions.endpoint_id
            AND webhook_endpoints.status = 'enabled'
       WHERE logged.event_type != 'webhook_endpoint.test') AS matched
 RETURNING webhook_deliveries.endpoint_id)
INSERT INTO outbox_jobs (id, tenant_id, kind, dedupe_key, payload, status, attempts, run_after,
                         created_at, updated_at)
SELECT gen_random_uuid(), :t_id::uuid, 'webhook.dispatch',
       'webhook.dispatch:' || CAST(woken.endpoint_id AS VARCHAR),
       jsonb_build_object('endpointId', CAST(woken.endpoint_id AS VARCHAR)), 'pending', 0,
       now(), now(), now()
FROM (SELECT DISTINCT queued.endpoint_id AS endpoint_id FROM queued) AS woken;
-- invoices/commands.py: the public link of a finalized invoice
INSERT INTO hosted_invoice_links (tenant_id, invoice_id, token_hash, created_at)
VALUES (:t_id, :invoice_id, md5(random()::text) || md5(random()::text), now());
-- invoices/jobs.py: the overdue check, due the day after the due date
INSERT INTO outbox_jobs (id, tenant_id, kind, payload, status, attempts, run_after, last_error,
                         created_at, updated_at, finished_at)
VALUES (bench_uuid7(), :t_id, 'invoice.overdue_check',
        jsonb_build_object('invoiceId', :invoice_id::text), 'pending', 0,
        (current_date + 31)::timestamptz, NULL, now(), now(), NULL);
COMMIT;
