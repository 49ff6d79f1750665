-- W4: the SQL of one signed payment webhook that settles a pending payment (80% of W4).
--
-- Written from bench/results/statements-W4.log, which every bench run captures again
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
-- The payments are W4's own, already settled by the API run (this runs after W4's check):
-- the updates flip status back and forth, so that every one changes the indexed status
-- column, as the app's pending -> succeeded / open -> paid does, and the amounts are
-- written back unchanged.
\set n random(1, :payments)
-- payments/routes.py: the payment's tenant (autocommit, before the transaction)
SELECT payment_routes.tenant_id, payment_routes.payment_id
FROM payment_routes
WHERE payment_routes.payment_id = (SELECT payment_id FROM bench_pg_payments WHERE n = :n) \gset
\startpipeline
BEGIN ISOLATION LEVEL READ COMMITTED;
SELECT set_config('app.tenant_id', :tenant_id::text, true);
\endpipeline
-- platform/inbox.py: a new webhook id
INSERT INTO inbox_messages (source, message_id, tenant_id, message_type, outcome, received_at)
VALUES ('gateway', 'msg_pgbench_' || bench_uuid7()::text, :tenant_id, 'payment.succeeded',
        'processed', now())
ON CONFLICT (source, message_id) DO NOTHING
RETURNING inbox_messages.message_id;
SELECT invoices.tenant_id, invoices.id, invoices.number, invoices.customer_id, invoices.currency,
       invoices.status, invoices.issue_date, invoices.due_date, invoices.subtotal, invoices.tax,
       invoices.total, invoices.amount_paid, invoices.amount_pending, invoices.memo,
       invoices.metadata, invoices.created_at, invoices.updated_at, invoices.finalized_at,
       invoices.sent_at, invoices.paid_at, invoices.voided_at, invoices.marked_uncollectible_at,
       invoices.overdue_at, invoices.number_sort
FROM invoices
WHERE invoices.id = (SELECT payments.invoice_id FROM payments
                     WHERE payments.id = :payment_id AND payments.tenant_id = :tenant_id)
  AND invoices.tenant_id = :tenant_id
FOR UPDATE OF invoices \gset invoice_
SELECT payments.tenant_id, payments.id, payments.invoice_id, payments.amount, payments.currency,
       payments.method, payments.status, payments.failure_code, payments.failure_message,
       payments.gateway_reference, payments.attempted_at, payments.succeeded_at,
       payments.failed_at
FROM payments
WHERE payments.id = :payment_id AND payments.tenant_id = :tenant_id
FOR UPDATE \gset payment_
-- invoices/queries.py: the invoice's snapshot for the event log (a settled payment's command
-- loaded no lines)
SELECT invoices.tenant_id, invoices.id
FROM invoices
WHERE invoices.tenant_id = :tenant_id AND invoices.id = :invoice_id;
SELECT invoice_items.tenant_id, invoice_items.id, invoice_items.invoice_id,
       invoice_items.position, invoice_items.description, invoice_items.quantity,
       invoice_items.unit_price, invoice_items.tax_rate, invoice_items.subtotal,
       invoice_items.tax, invoice_items.total
FROM invoice_items
WHERE :tenant_id::uuid = invoice_items.tenant_id AND :invoice_id::uuid = invoice_items.invoice_id
  AND invoice_items.tenant_id = :tenant_id AND invoice_items.tenant_id = :tenant_id
  AND invoice_items.tenant_id = :tenant_id
ORDER BY invoice_items.position;
-- events/log.py: payment.succeeded and invoice.paid with their snapshots, their deliveries
-- and dispatch jobs, in one statement (as in w1_create.sql), before the changes are flushed
WITH logged AS
(INSERT INTO events (tenant_id, id, event_type, entity_type, entity_id, stream_id, occurred_at,
                     request_id, actor_type, actor_id, data)
 VALUES (:tenant_id, bench_uuid7(), 'payment.succeeded', 'payment', :payment_id, :invoice_id,
         now(), md5(random()::text), 'gateway', NULL,
         ('{"amount": "' || :payment_amount || '", "currency": "USD", "invoiceId": "'
          || :invoice_id || '", "paymentId": "' || :payment_id || '", "gatewayReference": "sim_ch_'
          || left(md5(:payment_id::text), 24) || '", "object": {"id": "' || :payment_id
          || '", "amount": "' || :payment_amount || '", "method": "card", '
          || '"status": "succeeded", "currency": "USD", "failedAt": null, "invoiceId": "'
          || :invoice_id || '", "attemptedAt": "' || now() || '", "failureCode": null, '
          || '"succeededAt": "' || now() || '", "failureMessage": null, '
          || '"gatewayReference": "sim_ch_' || left(md5(:payment_id::text), 24) || '"}}')::jsonb),
        (:tenant_id, bench_uuid7(), 'invoice.paid', 'invoice', :invoice_id, :invoice_id,
         now(), md5(random()::text), 'gateway', NULL,
         ('{"number": "' || :invoice_number || '", "invoiceId": "' || :invoice_id
          || '", "amountPaid": "' || :invoice_amount_paid || '", "object": '
          || bench_invoice_json(:invoice_id, :invoice_customer_id, :invoice_number_sort)
          || '}')::jsonb)
 RETURNING events.id, events.event_type),
queued AS
(INSERT INTO webhook_deliveries (tenant_id, id, endpoint_id, event_id, event_type, status,
                                 attempts, next_attempt_at, created_at, updated_at)
 SELECT :tenant_id::uuid, gen_random_uuid(), matched.endpoint_id, matched.event_id,
        matched.event_type, 'pending', 0, now(), now(), now()
 FROM (SELECT DISTINCT logged.id AS event_id, logged.event_type AS event_type,
              webhook_subscriptions.endpoint_id AS endpoint_id
       FROM logged
       JOIN webhook_subscriptions ON webhook_subscriptions.tenant_id = :tenant_id::uuid
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
SELECT gen_random_uuid(), :tenant_id::uuid, 'webhook.dispatch',
       'webhook.dispatch:' || CAST(woken.endpoint_id AS VARCHAR),
       jsonb_build_object('endpointId', CAST(woken.endpoint_id AS VARCHAR)), 'pending', 0,
       now(), now(), now()
FROM (SELECT DISTINCT queued.endpoint_id AS endpoint_id FROM queued) AS woken;
UPDATE invoices
SET status = CASE WHEN invoices.status = 'paid' THEN 'open' ELSE 'paid' END,
    amount_paid = :invoice_amount_paid, amount_pending = :invoice_amount_pending,
    updated_at = now(), paid_at = now()
WHERE invoices.tenant_id = :tenant_id AND invoices.id = :invoice_id;
UPDATE payments
SET status = CASE WHEN payments.status = 'succeeded' THEN 'pending' ELSE 'succeeded' END,
    gateway_reference = 'sim_ch_' || left(md5(:payment_id::text), 24), succeeded_at = now()
WHERE payments.tenant_id = :tenant_id AND payments.id = :payment_id;
COMMIT;
