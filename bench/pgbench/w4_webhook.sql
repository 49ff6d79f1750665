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
UPDATE invoices
SET status = CASE WHEN invoices.status = 'paid' THEN 'open' ELSE 'paid' END,
    amount_paid = :invoice_amount_paid, amount_pending = :invoice_amount_pending,
    updated_at = now(), paid_at = now()
WHERE invoices.tenant_id = :tenant_id AND invoices.id = :invoice_id;
UPDATE payments
SET status = CASE WHEN payments.status = 'succeeded' THEN 'pending' ELSE 'succeeded' END,
    gateway_reference = 'sim_ch_' || left(md5(:payment_id::text), 24), succeeded_at = now()
WHERE payments.tenant_id = :tenant_id AND payments.id = :payment_id;
-- timeline/handlers.py: payment.succeeded and invoice.paid
\startpipeline
INSERT INTO events (tenant_id, id, event_type, entity_type, entity_id, stream_id,
                             occurred_at, request_id, actor_type, actor_id, data)
VALUES (:tenant_id, bench_uuid7(), 'payment.succeeded', 'payment', :payment_id, :invoice_id,
        now(), md5(random()::text), 'gateway', NULL,
        jsonb_build_object('amount', :payment_amount::text, 'currency', 'USD',
                           'invoiceId', :invoice_id::text, 'paymentId', :payment_id::text,
                           'gatewayReference', 'sim_ch_' || left(md5(:payment_id::text), 24)));
INSERT INTO events (tenant_id, id, event_type, entity_type, entity_id, stream_id,
                             occurred_at, request_id, actor_type, actor_id, data)
VALUES (:tenant_id, bench_uuid7(), 'invoice.paid', 'invoice', :invoice_id, :invoice_id,
        now(), md5(random()::text), 'gateway', NULL,
        jsonb_build_object('number', :invoice_number::text, 'invoiceId', :invoice_id::text,
                           'amountPaid', :invoice_amount_paid::text));
\endpipeline
COMMIT;
