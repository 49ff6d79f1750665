"""Issuing and voiding credit notes, and adjusting a customer's balance.

Lock order, as payments take it: the invoice first, then its payments, then the customer's
balance. Every command here that touches an invoice's money locks the invoice before
reading anything it decides on, so concurrent credit notes, refunds and payments on one
invoice queue and each sees what the one before it did.
"""

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import selectinload

from tenvoice.credits import ledger
from tenvoice.credits.amounts import (
    ByAmount,
    ByQuantity,
    Creditable,
    CreditableItem,
    FreeLine,
    Split,
    credit,
)
from tenvoice.credits.errors import CreditNoteNotFound
from tenvoice.credits.models import BalanceTransaction, CreditNote
from tenvoice.credits.refunds import refund_payments, succeeded_payments
from tenvoice.customers.errors import CustomerNotFound
from tenvoice.customers.models import Customer
from tenvoice.invoices.commands import load_invoice, load_invoice_of
from tenvoice.invoices.models import Invoice
from tenvoice.platform.db import utcnow
from tenvoice.platform.errors import ValidationFailed
from tenvoice.platform.money import MoneyError, to_minor
from tenvoice.platform.uow import UnitOfWork


@dataclass(frozen=True, slots=True)
class LineInput:
    """One requested line, its amount still in major units (the currency is the invoice's)."""

    invoice_item_id: uuid.UUID | None
    quantity: Decimal | None
    amount: Decimal | None
    description: str | None
    tax_rate: Decimal | None


@dataclass(frozen=True, slots=True)
class IssueCreditNote:
    invoice_id: uuid.UUID
    lines: Sequence[LineInput]
    reason: str | None
    memo: str | None
    metadata: dict[str, str]
    refund_amount: Decimal | None
    credit_amount: Decimal | None
    out_of_band_amount: Decimal | None
    # Work the credit note out and keep nothing.
    preview: bool = False


@dataclass(frozen=True, slots=True)
class VoidCreditNote:
    credit_note_id: uuid.UUID


@dataclass(frozen=True, slots=True)
class AdjustBalance:
    customer_id: uuid.UUID
    currency: str
    amount: Decimal
    description: str | None


async def issue_credit_note(uow: UnitOfWork, command: IssueCreditNote) -> CreditNote:
    invoice = await load_invoice(uow, command.invoice_id)
    amounts = credit(
        _creditable(invoice),
        [_requested(line, n, invoice.currency) for n, line in enumerate(command.lines)],
        Split(
            *(
                _minor(name, value, invoice.currency)
                for name, value in (
                    ("refundAmount", command.refund_amount),
                    ("creditAmount", command.credit_amount),
                    ("outOfBandAmount", command.out_of_band_amount),
                )
            )
        ),
    )
    now = utcnow()
    assert invoice.number is not None, "only finalized invoices are creditable"
    note = CreditNote.issue(
        invoice_id=invoice.id,
        customer_id=invoice.customer_id,
        currency=invoice.currency,
        # Gap-free per invoice: the invoice is locked, and a voided note keeps its number.
        number=f"{invoice.number}-CN-{invoice.credit_notes_issued + 1:02d}",
        amounts=amounts,
        reason=command.reason,
        memo=command.memo,
        metadata=command.metadata,
        at=now,
    )
    if command.preview:
        # Never added to the session: the commit writes nothing.
        return note
    uow.session.add(uow.track(note))
    invoice.credit(note.taken(), now)
    if amounts.refund:
        payments = await succeeded_payments(uow, invoice.id)
        refund_payments(uow, invoice, payments, amounts.refund, note, now)
    if amounts.credit:
        balance = await ledger.locked_balance(
            uow, invoice.customer_id, invoice.currency, create=True
        )
        assert balance is not None
        change = balance.rules().credit_from_note(amounts.credit)
        ledger.keep(uow, balance.enter(change, credit_note_id=note.id, at=utcnow()))
    return note


async def void_credit_note(uow: UnitOfWork, command: VoidCreditNote) -> CreditNote:
    invoice = await load_invoice_of(
        uow,
        CreditNote,
        command.credit_note_id,
        CreditNoteNotFound(f"No credit note {command.credit_note_id}."),
        with_items=True,
    )
    note = uow.track(
        (
            await uow.session.scalars(
                select(CreditNote)
                .where(CreditNote.id == command.credit_note_id)
                .options(selectinload(CreditNote.lines), selectinload(CreditNote.refunds))
                .with_for_update(of=CreditNote)
                .execution_options(populate_existing=True)
            )
        ).one()
    )
    now = utcnow()
    note.void([refund.status for refund in note.refunds], invoice.status, now)
    invoice.uncredit(note.taken(), now)
    if note.credit_amount:
        balance = await ledger.locked_balance(uow, note.customer_id, note.currency, create=True)
        assert balance is not None
        change = balance.rules().take_back_note_credit(note.credit_amount)
        ledger.keep(uow, balance.enter(change, credit_note_id=note.id, at=utcnow()))
    return note


async def adjust_balance(uow: UnitOfWork, command: AdjustBalance) -> BalanceTransaction:
    customer = await _live_customer(uow, command.customer_id)
    amount = _minor("amount", command.amount, command.currency, signed=True)
    balance = await ledger.locked_balance(uow, customer.id, command.currency, create=True)
    assert balance is not None
    entry = balance.enter(
        balance.rules().adjust(amount), description=command.description, at=utcnow()
    )
    assert entry is not None
    uow.session.add(entry)
    return entry


async def _live_customer(uow: UnitOfWork, customer_id: uuid.UUID) -> Customer:
    customer = await uow.session.get(Customer, (uow.context.tenant_id, customer_id))
    if customer is None or customer.deleted_at is not None:
        raise CustomerNotFound(f"No customer {customer_id}.")
    return customer


def _creditable(invoice: Invoice) -> Creditable:
    """The invoice as a new credit note sees it: all of it is on the invoice and its items,
    read under the invoice's lock."""
    return Creditable(
        currency=invoice.currency,
        status=invoice.status,
        total=invoice.total,
        amount_due=invoice.amount_due,
        amount_pending=invoice.amount_pending,
        credited=invoice.credit_notes_total,
        # Each succeeded payment adds to amount_paid, each refund not failed to
        # amount_refunded: what the payments can still give back is the difference.
        refundable=invoice.amount_paid - invoice.amount_refunded,
        items={
            item.id: CreditableItem(
                item.id,
                item.description,
                item.quantity,
                item.unit_price,
                item.tax_rate,
                item.subtotal,
                item.credited_quantity,
                item.credited_subtotal,
            )
            for item in invoice.items
        },
    )


def _requested(line: LineInput, n: int, currency: str) -> ByQuantity | ByAmount | FreeLine:
    field = f"lines[{n}]"
    if line.invoice_item_id is None:
        if line.description is None or line.amount is None:
            raise ValidationFailed(
                field, "give invoiceItemId with quantity or amount, or description and amount"
            )
        return FreeLine(
            line.description,
            _minor(f"{field}.amount", line.amount, currency),
            line.tax_rate if line.tax_rate is not None else Decimal(0),
        )
    if line.description is not None or line.tax_rate is not None:
        raise ValidationFailed(
            field, "a line of an invoice item takes its description and tax rate from the item"
        )
    if (line.quantity is None) == (line.amount is None):
        raise ValidationFailed(field, "give either quantity or amount for an invoice item")
    if line.quantity is not None:
        return ByQuantity(line.invoice_item_id, line.quantity)
    assert line.amount is not None
    return ByAmount(line.invoice_item_id, _minor(f"{field}.amount", line.amount, currency))


def _minor(field: str, value: Decimal | None, currency: str, *, signed: bool = False) -> int:
    if value is None:
        return 0
    try:
        minor = to_minor(value, currency)
    except MoneyError as exc:
        raise ValidationFailed(field, str(exc)) from None
    if minor < 0 and not signed:
        raise ValidationFailed(field, "must not be negative")
    return minor
