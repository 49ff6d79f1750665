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

from sqlalchemy import BigInteger, func, select, type_coerce

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
from tenvoice.credits.models import (
    BalanceTransaction,
    CreditNote,
    CreditNoteLine,
    CreditNoteStatus,
    Refund,
)
from tenvoice.credits.refunds import refund_payments, succeeded_payments
from tenvoice.customers.errors import CustomerNotFound
from tenvoice.customers.models import Customer
from tenvoice.invoices.commands import load_invoice
from tenvoice.invoices.errors import InvoiceNotFound
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
    payments = await succeeded_payments(uow, invoice.id)
    creditable, issued = await _creditable(uow, invoice, sum(p.refundable for p in payments))
    amounts = credit(
        creditable,
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
        number=f"{invoice.number}-CN-{issued + 1:02d}",
        amounts=amounts,
        reason=command.reason,
        memo=command.memo,
        metadata=command.metadata,
        at=now,
    )
    if command.preview:
        # Expunged from nothing: it was never added, so the commit writes nothing.
        return note
    uow.session.add(uow.track(note))
    invoice.credit(amounts.pre_payment, now)
    if amounts.refund:
        await refund_payments(uow, invoice, payments, amounts.refund, note.id, now)
    if amounts.credit:
        balance = await ledger.locked_balance(
            uow, invoice.customer_id, invoice.currency, create=True
        )
        assert balance is not None
        ledger.keep(
            uow,
            balance.enter(
                balance.rules().credit_from_note(amounts.credit), credit_note_id=note.id, at=now
            ),
        )
    return note


async def void_credit_note(uow: UnitOfWork, command: VoidCreditNote) -> CreditNote:
    of_note = select(CreditNote.invoice_id).where(CreditNote.id == command.credit_note_id)
    try:
        invoice = await load_invoice(uow, of_note.scalar_subquery(), with_items=False)
    except InvoiceNotFound:
        raise CreditNoteNotFound(f"No credit note {command.credit_note_id}.") from None
    note = uow.track(
        (
            await uow.session.scalars(
                select(CreditNote)
                .where(CreditNote.id == command.credit_note_id)
                .with_for_update()
                .execution_options(populate_existing=True)
            )
        ).one()
    )
    refund_statuses = (
        await uow.session.scalars(select(Refund.status).where(Refund.credit_note_id == note.id))
    ).all()
    now = utcnow()
    note.void(refund_statuses, invoice.status, now)
    invoice.uncredit(note.pre_payment_amount, now)
    if note.credit_amount:
        balance = await ledger.locked_balance(uow, note.customer_id, note.currency, create=True)
        assert balance is not None
        ledger.keep(
            uow,
            balance.enter(
                balance.rules().take_back_note_credit(note.credit_amount),
                credit_note_id=note.id,
                at=now,
            ),
        )
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


async def _creditable(uow: UnitOfWork, invoice: Invoice, refundable: int) -> tuple[Creditable, int]:
    """The invoice as a new credit note sees it, and how many notes it has had."""
    session = uow.session
    issued = CreditNote.status == CreditNoteStatus.ISSUED
    count, credited = (
        await session.execute(
            select(
                func.count(),
                func.coalesce(func.sum(CreditNote.total).filter(issued), 0),
            ).where(CreditNote.invoice_id == invoice.id)
        )
    ).one()
    taken = {
        item_id: (quantity, subtotal)
        for item_id, quantity, subtotal in await session.execute(
            select(
                CreditNoteLine.invoice_item_id,
                # As stored, a scaled integer (ScaledDecimal(4)): summed exactly.
                func.sum(type_coerce(CreditNoteLine.quantity, BigInteger)),
                func.sum(CreditNoteLine.subtotal),
            )
            .join(
                CreditNote,
                (CreditNote.tenant_id == CreditNoteLine.tenant_id)
                & (CreditNote.id == CreditNoteLine.credit_note_id),
            )
            .where(
                CreditNote.invoice_id == invoice.id,
                issued,
                CreditNoteLine.invoice_item_id.is_not(None),
            )
            .group_by(CreditNoteLine.invoice_item_id)
        )
    }
    items = {}
    for item in invoice.items:
        quantity, subtotal = taken.get(item.id, (None, 0))
        items[item.id] = CreditableItem(
            item.id,
            item.description,
            item.quantity,
            item.unit_price,
            item.tax_rate,
            item.subtotal,
            Decimal(quantity or 0).scaleb(-4),
            int(subtotal or 0),
        )
    creditable = Creditable(
        currency=invoice.currency,
        status=invoice.status,
        total=invoice.total,
        amount_due=invoice.amount_due,
        amount_pending=invoice.amount_pending,
        credited=int(credited),
        refundable=refundable,
        items=items,
    )
    return creditable, int(count)


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
