"""What runs when each domain event happens, inside the transaction that raised it; which
function runs each kind of outbox job, in the worker; and which counts the database keeps
by status are shown to operators."""

from tenvoice.credits import events as credit_events
from tenvoice.credits.queries import credit_note_snapshot, refund_snapshot
from tenvoice.customers import events as customer_events
from tenvoice.customers.queries import customer_snapshot
from tenvoice.events.handlers import Snapshot, event_logger
from tenvoice.gateway import simulator
from tenvoice.gateway.handlers import request_charge, request_refund
from tenvoice.invoices import events as invoice_events
from tenvoice.invoices import jobs as invoice_jobs
from tenvoice.invoices.queries import invoice_snapshot
from tenvoice.payments import events as payment_events
from tenvoice.payments.schemas import payment_snapshot
from tenvoice.platform.messages import EventHandler
from tenvoice.platform.metrics import StoredCounts
from tenvoice.platform.outbox import JobHandler
from tenvoice.webhooks import dispatch, fanout
from tenvoice.webhooks import events as webhook_events
from tenvoice.webhooks import metrics as webhook_metrics
from tenvoice.webhooks.schemas import endpoint_snapshot

_LOGGED: list[type] = [
    customer_events.CustomerCreated,
    customer_events.CustomerUpdated,
    customer_events.CustomerDeleted,
    invoice_events.InvoiceCreated,
    invoice_events.InvoiceUpdated,
    invoice_events.InvoiceDeleted,
    invoice_events.InvoiceFinalized,
    invoice_events.InvoiceSent,
    invoice_events.InvoiceVoided,
    invoice_events.InvoiceMarkedUncollectible,
    invoice_events.InvoicePaid,
    invoice_events.InvoiceOverdue,
    payment_events.PaymentAttempted,
    payment_events.PaymentSucceeded,
    payment_events.PaymentFailed,
    credit_events.CreditNoteCreated,
    credit_events.CreditNoteVoided,
    credit_events.RefundCreated,
    credit_events.RefundSucceeded,
    credit_events.RefundFailed,
    credit_events.CustomerBalanceChanged,
    webhook_events.WebhookEndpointDisabled,
]

# Each entity as GET returns it, for the snapshot (`data.object`) every logged event carries.
SNAPSHOTS: dict[str, Snapshot] = {
    "customer": customer_snapshot,
    "invoice": invoice_snapshot,
    "payment": payment_snapshot,
    "credit_note": credit_note_snapshot,
    "refund": refund_snapshot,
    "webhook_endpoint": endpoint_snapshot,
}
log_event = event_logger(SNAPSHOTS)

EVENT_HANDLERS: dict[type, list[EventHandler]] = {
    **{event: [log_event] for event in _LOGGED},
    invoice_events.InvoiceFinalized: [log_event, invoice_jobs.schedule_overdue_check],
    payment_events.ChargeRequested: [request_charge],
    credit_events.RefundRequested: [request_refund],
}

JOB_HANDLERS: dict[str, JobHandler] = {
    simulator.CHARGE: simulator.charge,
    simulator.REFUND: simulator.refund,
    invoice_jobs.OVERDUE_CHECK: invoice_jobs.check_overdue,
    fanout.DISPATCH: dispatch.dispatch,
}

# Read when /metrics is scraped and printed by `tenvoice jobs`.
STORED_COUNTS: list[StoredCounts] = [webhook_metrics.STORED]
