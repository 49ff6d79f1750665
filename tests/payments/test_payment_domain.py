"""The payment rules of the Invoice and Payment aggregates, without a database."""

import uuid
from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from tenvoice.invoices import events as invoice_events
from tenvoice.invoices.errors import (
    AmountExceedsBalance,
    InvalidInvoiceTransition,
    InvoiceHasPendingPayments,
    InvoiceNotPayable,
)
from tenvoice.invoices.models import Invoice
from tenvoice.payments import events
from tenvoice.payments.errors import InvalidPaymentTransition
from tenvoice.payments.models import Payment, PaymentMethod
from tenvoice.platform.messages import DomainEvent
from tests.invoices.builders import AT, ISSUED_NUMBER, invoice_in

LATER = datetime(2026, 3, 5, 8, 0, 0, tzinfo=UTC)
NUMBER = ISSUED_NUMBER
# API.md, "Payments": only these statuses take payments.
PAYABLE = ("open", "uncollectible")
STATUSES = ("draft", "open", "paid", "void", "uncollectible")


def _money(invoice: Invoice) -> tuple[str, int, int, int, datetime | None]:
    return (
        invoice.status,
        invoice.amount_paid,
        invoice.amount_pending,
        invoice.amount_due,
        invoice.paid_at,
    )


def _attempt(invoice: Invoice, amount: int) -> Payment:
    """A payment as the attempt command makes one: the balance reserved first."""
    invoice.reserve_payment(amount)
    payment = Payment.attempt(invoice, amount, PaymentMethod.CARD, "tok_pending", AT)
    payment.pull_events()
    return payment


# -- reserving ------------------------------------------------------------------------


@pytest.mark.parametrize("status", STATUSES)
def test_only_open_and_uncollectible_invoices_take_payments(status: str) -> None:
    invoice = invoice_in(status)
    before = _money(invoice)
    if status in PAYABLE:
        invoice.reserve_payment(1)
        assert invoice.amount_pending == 1
        assert invoice.status == status
        return
    with pytest.raises(InvoiceNotPayable) as raised:
        invoice.reserve_payment(1)
    assert (raised.value.status, raised.value.code) == (409, "invoice_not_payable")
    assert _money(invoice) == before
    assert invoice.pull_events() == []


def test_reserving_holds_the_amount_without_paying_anything() -> None:
    invoice = invoice_in("open")
    updated = invoice.updated_at
    invoice.reserve_payment(6000)
    assert (invoice.amount_pending, invoice.amount_paid, invoice.amount_due) == (6000, 0, 10000)
    assert invoice.payable_balance == 4000
    assert (invoice.status, invoice.updated_at) == ("open", updated)
    assert invoice.pull_events() == []


def test_the_whole_balance_can_be_reserved_and_not_a_minor_unit_more() -> None:
    invoice = invoice_in("open")
    with pytest.raises(AmountExceedsBalance) as raised:
        invoice.reserve_payment(10001)
    assert (raised.value.status, raised.value.code) == (409, "amount_exceeds_balance")
    assert invoice.amount_pending == 0
    invoice.reserve_payment(10000)
    assert invoice.payable_balance == 0


def test_pending_payments_count_against_the_balance() -> None:
    invoice = invoice_in("open")
    invoice.reserve_payment(6000)
    with pytest.raises(AmountExceedsBalance) as raised:
        invoice.reserve_payment(5000)
    assert "40.00" in raised.value.detail
    assert invoice.amount_pending == 6000
    invoice.reserve_payment(4000)
    assert invoice.amount_pending == 10000
    with pytest.raises(AmountExceedsBalance):
        invoice.reserve_payment(1)
    assert (invoice.amount_pending, invoice.amount_due) == (10000, 10000)


def test_paid_money_counts_against_the_balance_too() -> None:
    invoice = invoice_in("open")
    invoice.reserve_payment(7000)
    invoice.apply_payment(7000, LATER)
    with pytest.raises(AmountExceedsBalance):
        invoice.reserve_payment(3001)
    invoice.reserve_payment(3000)


def test_an_uncollectible_invoice_is_reserved_against_like_an_open_one() -> None:
    invoice = invoice_in("uncollectible")
    with pytest.raises(AmountExceedsBalance):
        invoice.reserve_payment(10001)
    invoice.reserve_payment(10000)
    assert invoice.payable_balance == 0


# -- applying and releasing -----------------------------------------------------------


def test_a_partial_payment_keeps_the_invoice_open() -> None:
    invoice = invoice_in("open")
    invoice.reserve_payment(2500)
    invoice.apply_payment(2500, LATER)
    assert _money(invoice) == ("open", 2500, 0, 7500, None)
    assert invoice.updated_at == LATER
    assert invoice.pull_events() == []


def test_the_payment_that_clears_the_balance_settles_the_invoice() -> None:
    invoice = invoice_in("open")
    invoice.reserve_payment(6000)
    invoice.reserve_payment(4000)
    invoice.apply_payment(6000, AT)
    assert invoice.status == "open"
    assert invoice.pull_events() == []
    invoice.apply_payment(4000, LATER)
    assert _money(invoice) == ("paid", 10000, 0, 0, LATER)
    assert invoice.updated_at == LATER
    assert invoice.pull_events() == [invoice_events.InvoicePaid(invoice.id, NUMBER, "100.00")]


def test_paying_an_uncollectible_invoice_in_full_makes_it_paid() -> None:
    invoice = invoice_in("uncollectible")
    invoice.reserve_payment(10000)
    invoice.apply_payment(10000, LATER)
    assert _money(invoice) == ("paid", 10000, 0, 0, LATER)
    assert invoice.pull_events() == [invoice_events.InvoicePaid(invoice.id, NUMBER, "100.00")]


def test_settling_formats_in_the_invoices_currency() -> None:
    invoice = invoice_in("open", "1500", "JPY")
    assert invoice.amount_due == 1500
    invoice.reserve_payment(1500)
    invoice.apply_payment(1500, LATER)
    assert invoice.pull_events() == [invoice_events.InvoicePaid(invoice.id, NUMBER, "1500")]


def test_a_failed_payment_frees_its_amount_for_another_attempt() -> None:
    invoice = invoice_in("open")
    invoice.reserve_payment(10000)
    invoice.release_payment(10000, LATER)
    assert _money(invoice) == ("open", 0, 0, 10000, None)
    assert invoice.payable_balance == 10000
    assert invoice.updated_at == LATER
    assert invoice.pull_events() == []
    invoice.reserve_payment(10000)
    assert invoice.amount_pending == 10000


def test_releasing_one_payment_leaves_the_others_reserved() -> None:
    invoice = invoice_in("open")
    invoice.reserve_payment(3000)
    invoice.reserve_payment(5000)
    invoice.release_payment(3000, LATER)
    assert invoice.amount_pending == 5000
    assert invoice.payable_balance == 5000


# -- void and uncollectible while payments are pending --------------------------------


@pytest.mark.parametrize("status", PAYABLE)
def test_void_is_refused_while_a_payment_is_pending(status: str) -> None:
    invoice = invoice_in(status)
    invoice.reserve_payment(1)
    before = (_money(invoice), invoice.voided_at, invoice.updated_at)
    with pytest.raises(InvoiceHasPendingPayments) as raised:
        invoice.void(LATER)
    assert (raised.value.status, raised.value.code) == (409, "invoice_has_pending_payments")
    assert (_money(invoice), invoice.voided_at, invoice.updated_at) == before
    assert invoice.pull_events() == []


def test_void_is_allowed_again_once_the_pending_payment_failed() -> None:
    invoice = invoice_in("open")
    invoice.reserve_payment(5000)
    invoice.release_payment(5000, AT)
    invoice.void(LATER)
    assert (invoice.status, invoice.voided_at) == ("void", LATER)
    assert invoice.pull_events() == [invoice_events.InvoiceVoided(invoice.id, NUMBER, "open")]


def test_an_impossible_void_says_so_before_pending_payments() -> None:
    # The transition table is the first answer: a paid invoice is never voidable.
    invoice = invoice_in("open")
    invoice.reserve_payment(10000)
    invoice.apply_payment(10000, AT)
    with pytest.raises(InvalidInvoiceTransition):
        invoice.void(LATER)


def test_mark_uncollectible_is_allowed_while_a_payment_is_pending() -> None:
    invoice = invoice_in("open")
    invoice.reserve_payment(4000)
    invoice.mark_uncollectible(LATER)
    assert _money(invoice) == ("uncollectible", 0, 4000, 10000, None)
    assert invoice.pull_events() == [
        invoice_events.InvoiceMarkedUncollectible(invoice.id, NUMBER, "100.00")
    ]
    invoice.apply_payment(4000, LATER)
    assert _money(invoice) == ("uncollectible", 4000, 0, 6000, None)


# -- the Payment aggregate ------------------------------------------------------------


@pytest.mark.parametrize("method", list(PaymentMethod))
def test_an_attempt_is_a_pending_payment_in_the_invoices_currency(method: PaymentMethod) -> None:
    invoice = invoice_in("open", "1.250", "KWD")
    invoice.reserve_payment(1000)
    payment = Payment.attempt(invoice, 1000, method, "tok_success", AT)
    assert isinstance(payment.id, uuid.UUID)
    assert payment.id != invoice.id
    assert (payment.invoice_id, payment.amount, payment.currency) == (invoice.id, 1000, "KWD")
    assert (payment.method, payment.status, payment.attempted_at) == (method.value, "pending", AT)
    assert (payment.succeeded_at, payment.failed_at) == (None, None)
    assert (payment.failure_code, payment.failure_message) == (None, None)
    assert payment.gateway_reference is None
    assert payment.money() == "1.000"


def test_an_attempt_records_the_attempt_and_asks_for_the_charge() -> None:
    invoice = invoice_in("open")
    invoice.reserve_payment(4000)
    payment = Payment.attempt(invoice, 4000, PaymentMethod.QRIS, "tok_declined", AT)
    recorded = payment.pull_events()
    expected: list[DomainEvent] = [
        events.PaymentAttempted(payment.id, invoice.id, "40.00", "USD", "qris"),
        events.ChargeRequested(payment.id, invoice.id, "40.00", "USD", "qris", "tok_declined"),
    ]
    assert recorded == expected
    for event in recorded:
        # Payment events are about the payment but read on the invoice's timeline.
        assert event.entity_type == "payment"
        assert event.entity_id == payment.id
        assert event.stream_id == invoice.id
    assert [event.event_type for event in recorded] == [
        "payment.attempted",
        "payment.charge_requested",
    ]
    assert payment.pull_events() == []


def test_an_attempt_is_formatted_with_the_currencys_minor_digits() -> None:
    invoice = invoice_in("open", "1500", "JPY")
    invoice.reserve_payment(1500)
    payment = Payment.attempt(invoice, 1500, PaymentMethod.BANK_TRANSFER, "", AT)
    assert payment.money() == "1500"
    attempted, _ = payment.pull_events()
    assert attempted == events.PaymentAttempted(
        payment.id, invoice.id, "1500", "JPY", "bank_transfer"
    )


def test_a_pending_payment_succeeds() -> None:
    invoice = invoice_in("open")
    payment = _attempt(invoice, 2500)
    payment.succeed("ch_123", LATER)
    assert (payment.status, payment.gateway_reference) == ("succeeded", "ch_123")
    assert (payment.succeeded_at, payment.failed_at) == (LATER, None)
    assert (payment.failure_code, payment.failure_message) == (None, None)
    assert payment.pull_events() == [
        events.PaymentSucceeded(payment.id, invoice.id, "25.00", "USD", "ch_123")
    ]


@pytest.mark.parametrize("reference", ["ch_456", None])
def test_a_pending_payment_fails(reference: str | None) -> None:
    invoice = invoice_in("open")
    payment = _attempt(invoice, 2500)
    payment.fail("card_declined", "The card was declined.", reference, LATER)
    assert payment.status == "failed"
    assert (payment.failure_code, payment.failure_message) == (
        "card_declined",
        "The card was declined.",
    )
    assert (payment.gateway_reference, payment.failed_at) == (reference, LATER)
    assert payment.succeeded_at is None
    assert payment.pull_events() == [
        events.PaymentFailed(
            payment.id,
            invoice.id,
            "25.00",
            "USD",
            reference,
            "card_declined",
            "The card was declined.",
        )
    ]


Settle = Callable[[Payment], None]
SETTLE: dict[str, Settle] = {
    "succeed": lambda payment: payment.succeed("ch_again", datetime(2027, 1, 1, tzinfo=UTC)),
    "fail": lambda payment: payment.fail(
        "card_declined", "again", "ch_again", datetime(2027, 1, 1, tzinfo=UTC)
    ),
}


@pytest.mark.parametrize("first", list(SETTLE))
@pytest.mark.parametrize("then", list(SETTLE))
def test_a_settled_payment_never_moves_again(first: str, then: str) -> None:
    invoice = invoice_in("open")
    payment = _attempt(invoice, 2500)
    SETTLE[first](payment)
    payment.pull_events()
    before = (
        payment.status,
        payment.gateway_reference,
        payment.failure_code,
        payment.failure_message,
        payment.succeeded_at,
        payment.failed_at,
    )
    with pytest.raises(InvalidPaymentTransition) as raised:
        SETTLE[then](payment)
    assert (raised.value.status, raised.value.code) == (409, "invalid_payment_transition")
    after = (
        payment.status,
        payment.gateway_reference,
        payment.failure_code,
        payment.failure_message,
        payment.succeeded_at,
        payment.failed_at,
    )
    assert after == before
    assert payment.pull_events() == []
