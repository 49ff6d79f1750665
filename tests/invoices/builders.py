"""Invoice aggregates in a chosen state, built without a database, for the domain tests."""

import uuid
from datetime import UTC, date, datetime
from decimal import Decimal

from tenvoice.invoices.amounts import Line
from tenvoice.invoices.models import Invoice

AT = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)
# The number an invoice from `invoice_in` carries once it is finalized.
ISSUED_NUMBER = "INV-2026-00001"


def draft_invoice(
    unit_price: str = "100", currency: str = "USD", due_date: date = date(2026, 3, 31)
) -> Invoice:
    """A draft of one line (1 x unit_price, no tax), issued 2026-03-01."""
    return Invoice.draft(
        customer_id=uuid.uuid4(),
        currency=currency,
        issue_date=date(2026, 3, 1),
        due_date=due_date,
        lines=[Line("Work", Decimal(1), Decimal(unit_price), Decimal(0))],
        memo=None,
        metadata={},
    )


def invoice_in(
    status: str,
    unit_price: str = "100",
    currency: str = "USD",
    due_date: date = date(2026, 3, 31),
) -> Invoice:
    """An invoice in `status` (of unit_price, or zero when paid), its events collected."""
    invoice = draft_invoice("0" if status == "paid" else unit_price, currency, due_date)
    if status != "draft":
        invoice.finalize(ISSUED_NUMBER, AT)
    if status == "void":
        invoice.void(AT)
    if status == "uncollectible":
        invoice.mark_uncollectible(AT)
    invoice.pull_events()
    assert invoice.status == status
    return invoice
