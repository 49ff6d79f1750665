"""The Invoice aggregate's rules and status machine, without a database."""

import uuid
from collections.abc import Callable
from datetime import date
from decimal import Decimal

import pytest

from tenvoice.invoices import events
from tenvoice.invoices.amounts import Line
from tenvoice.invoices.errors import (
    InvalidInvoiceTransition,
    InvoiceNotDeletable,
    InvoiceNotEditable,
)
from tenvoice.invoices.models import Invoice, InvoiceStatus
from tenvoice.platform.errors import ValidationFailed
from tests.invoices.builders import AT, draft_invoice, invoice_in

NUMBER = "INV-2026-00042"
# API.md, "Invoices": written out here, not read from the code under test.
ALLOWED = {
    "draft": {"open"},
    "open": {"paid", "void", "uncollectible"},
    "uncollectible": {"paid", "void"},
    "paid": set(),
    "void": set(),
}
STATUSES = list(ALLOWED)
PAIRS = [(current, target) for current in STATUSES for target in STATUSES]

Action = Callable[[Invoice], None]
ACTIONS: dict[str, tuple[Action, str]] = {
    "finalize": (lambda invoice: invoice.finalize(NUMBER, AT), "open"),
    "void": (lambda invoice: invoice.void(AT), "void"),
    "mark_uncollectible": (lambda invoice: invoice.mark_uncollectible(AT), "uncollectible"),
}


def _types(invoice: Invoice) -> list[str]:
    return [event.event_type for event in invoice.pull_events()]


@pytest.mark.parametrize(("current", "target"), PAIRS)
def test_transition_table(current: str, target: str) -> None:
    invoice = invoice_in(current)
    if target in ALLOWED[current]:
        invoice.check_transition(InvoiceStatus(target), "move")
    else:
        with pytest.raises(InvalidInvoiceTransition) as raised:
            invoice.check_transition(InvoiceStatus(target), "move")
        assert raised.value.code == "invalid_invoice_transition"
        assert raised.value.status == 409


@pytest.mark.parametrize("status", STATUSES)
@pytest.mark.parametrize("action", list(ACTIONS))
def test_each_action_from_each_status(status: str, action: str) -> None:
    invoice = invoice_in(status)
    run, target = ACTIONS[action]
    before = (invoice.status, invoice.number, invoice.updated_at)
    if target not in ALLOWED[status]:
        with pytest.raises(InvalidInvoiceTransition):
            run(invoice)
        assert (invoice.status, invoice.number, invoice.updated_at) == before
        assert invoice.pull_events() == []
        return
    run(invoice)
    assert invoice.status == target
    assert invoice.updated_at == AT
    recorded = invoice.pull_events()
    assert len(recorded) == 1
    event = recorded[0]
    assert event.entity_id == invoice.id
    if action == "finalize":
        assert event == events.InvoiceFinalized(
            invoice.id, NUMBER, "100.00", "100.00", "2026-03-31"
        )
        assert (invoice.number, invoice.finalized_at) == (NUMBER, AT)
    elif action == "void":
        assert event == events.InvoiceVoided(invoice.id, "INV-2026-00001", status)
        assert invoice.voided_at == AT
        assert invoice.amount_due == 0
    else:
        assert event == events.InvoiceMarkedUncollectible(invoice.id, "INV-2026-00001", "100.00")
        assert invoice.marked_uncollectible_at == AT
        assert invoice.amount_due == 10000


@pytest.mark.parametrize("status", STATUSES)
def test_send_only_what_is_still_owed(status: str) -> None:
    invoice = invoice_in(status)
    if status in ("open", "uncollectible"):
        invoice.send(AT)
        assert invoice.status == status
        assert invoice.sent_at == AT
        assert invoice.pull_events() == [
            events.InvoiceSent(invoice.id, "INV-2026-00001", invoice.customer_id)
        ]
    else:
        with pytest.raises(InvalidInvoiceTransition):
            invoice.send(AT)
        assert invoice.sent_at is None
        assert invoice.pull_events() == []


def test_zero_total_invoice_is_paid_on_finalize() -> None:
    invoice = draft_invoice("0")
    invoice.pull_events()
    invoice.finalize(NUMBER, AT)
    assert invoice.status == "paid"
    assert (invoice.finalized_at, invoice.paid_at) == (AT, AT)
    assert invoice.amount_due == 0
    expected: list[object] = [
        events.InvoiceFinalized(invoice.id, NUMBER, "0.00", "0.00", "2026-03-31"),
        events.InvoicePaid(invoice.id, NUMBER, "0.00"),
    ]
    assert invoice.pull_events() == expected


def test_a_nonzero_invoice_stays_open_on_finalize() -> None:
    invoice = draft_invoice("0.01")
    invoice.finalize(NUMBER, AT)
    assert invoice.status == "open"
    assert invoice.paid_at is None
    assert invoice.amount_due == 1


def test_draft_prices_lines_and_records_its_creation() -> None:
    invoice = Invoice.draft(
        customer_id=uuid.uuid4(),
        currency="USD",
        issue_date=date(2026, 3, 1),
        due_date=date(2026, 3, 1),
        lines=[
            Line("Consulting", Decimal(2), Decimal(100), Decimal(11)),
            Line("Support", Decimal(1), Decimal(50), Decimal(11)),
        ],
        memo="thanks",
        metadata={"po": "7"},
    )
    assert (invoice.status, invoice.number) == ("draft", None)
    assert (invoice.subtotal, invoice.tax, invoice.total) == (25000, 2750, 27750)
    assert [(i.position, i.subtotal, i.tax, i.total) for i in invoice.items] == [
        (0, 20000, 2200, 22200),
        (1, 5000, 550, 5550),
    ]
    assert invoice.pull_events() == [
        events.InvoiceCreated(invoice.id, invoice.customer_id, "USD", "277.50", 2)
    ]
    assert invoice.pull_events() == []


def test_due_date_before_issue_date_is_refused() -> None:
    with pytest.raises(ValidationFailed) as raised:
        Invoice.draft(
            customer_id=uuid.uuid4(),
            currency="USD",
            issue_date=date(2026, 3, 2),
            due_date=date(2026, 3, 1),
            lines=[Line("Work", Decimal(1), Decimal(1), Decimal(0))],
            memo=None,
            metadata={},
        )
    assert raised.value.errors is not None
    assert raised.value.errors[0].field == "dueDate"


def test_a_line_that_cannot_be_priced_names_its_position() -> None:
    lines = [
        Line("Fine", Decimal(1), Decimal(1), Decimal(0)),
        Line("Huge", Decimal(1_000_000_000), Decimal(1_000_000_000_000), Decimal(0)),
    ]
    with pytest.raises(ValidationFailed) as raised:
        Invoice.draft(
            customer_id=uuid.uuid4(),
            currency="USD",
            issue_date=date(2026, 3, 1),
            due_date=date(2026, 3, 1),
            lines=lines,
            memo=None,
            metadata={},
        )
    assert raised.value.errors is not None
    assert [error.field for error in raised.value.errors] == ["items[1]"]


def test_revise_changes_a_draft_and_records_what_changed() -> None:
    invoice = invoice_in("draft")
    invoice.revise({"memo": "new", "due_date": date(2026, 4, 30)}, None)
    assert (invoice.memo, invoice.due_date) == ("new", date(2026, 4, 30))
    [event] = invoice.pull_events()
    assert event == events.InvoiceUpdated(invoice.id, ("memo", "dueDate"), "100.00")


def test_revise_with_nothing_new_records_nothing() -> None:
    invoice = invoice_in("draft")
    invoice.revise({"currency": "USD", "memo": None}, None)
    assert invoice.pull_events() == []


def test_revise_currency_reprices_the_stored_lines() -> None:
    invoice = draft_invoice("10.5")
    invoice.pull_events()
    invoice.revise({"currency": "JPY"}, None)
    assert (invoice.currency, invoice.total) == ("JPY", 11)
    [event] = invoice.pull_events()
    assert event == events.InvoiceUpdated(invoice.id, ("currency", "items"), "11")


def test_revise_refuses_dates_out_of_order_and_keeps_the_old_ones() -> None:
    invoice = invoice_in("draft")
    with pytest.raises(ValidationFailed):
        invoice.revise({"issue_date": date(2026, 4, 1)}, None)
    assert invoice.issue_date == date(2026, 3, 1)
    assert invoice.pull_events() == []


@pytest.mark.parametrize("status", ["open", "paid", "void", "uncollectible"])
def test_only_drafts_can_be_revised_or_discarded(status: str) -> None:
    invoice = invoice_in(status)
    with pytest.raises(InvoiceNotEditable):
        invoice.revise({"memo": "late"}, None)
    with pytest.raises(InvoiceNotDeletable):
        invoice.discard()
    assert invoice.memo is None
    assert invoice.pull_events() == []


def test_discarding_a_draft_records_it() -> None:
    invoice = invoice_in("draft")
    invoice.discard()
    assert invoice.pull_events() == [events.InvoiceDeleted(invoice.id)]
