"""What runs when each domain event happens, inside the transaction that raised it."""

from tenvoice.customers import events as customer_events
from tenvoice.invoices import events as invoice_events
from tenvoice.platform.messages import EventHandler
from tenvoice.timeline.handlers import record_on_timeline

_ON_TIMELINE: list[type] = [
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
]

EVENT_HANDLERS: dict[type, list[EventHandler]] = {
    event: [record_on_timeline] for event in _ON_TIMELINE
}
