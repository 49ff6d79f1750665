"""Refunds: made on their own or by a credit note, sent to the gateway through the outbox,
and settled by its signed webhook, entered once in the inbox.

Lock order as payments take it: the invoice, then its payments, then the refund. What a
payment can still refund is read only under its lock, so concurrent refunds of one payment
never add up to more than it took.
"""

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import TypeVar

from sqlalchemy import select

from tenvoice.credits.errors import (
    AmountExceedsRefundable,
    InvalidRefundTransition,
    PaymentNotRefundable,
    RefundNotFound,
)
from tenvoice.credits.models import CreditNote, Refund
from tenvoice.invoices.commands import load_invoice_of
from tenvoice.invoices.models import Invoice
from tenvoice.payments.errors import PaymentNotFound
from tenvoice.payments.models import Payment, PaymentStatus
from tenvoice.platform import inbox
from tenvoice.platform.db import utcnow
from tenvoice.platform.errors import ValidationFailed
from tenvoice.platform.money import MoneyError, format_minor, parse_decimal, to_minor
from tenvoice.platform.uow import UnitOfWork

GATEWAY = "gateway"


@dataclass(frozen=True, slots=True)
class CreateRefund:
    payment_id: uuid.UUID
    # None: all that is left to refund.
    amount: Decimal | None
    reason: str | None


@dataclass(frozen=True, slots=True)
class ApplyRefundEvent:
    """A verified gateway webhook: `refund.succeeded` or `refund.failed`."""

    webhook_id: str
    type: str
    refund_id: uuid.UUID
    gateway_reference: str | None
    amount: str
    currency: str
    failure_code: str | None


async def succeeded_payments(uow: UnitOfWork, invoice_id: uuid.UUID) -> list[Payment]:
    """The invoice's succeeded payments, newest first, locked (its invoice is already)."""
    payments = await uow.session.scalars(
        select(Payment)
        .where(Payment.invoice_id == invoice_id, Payment.status == PaymentStatus.SUCCEEDED)
        .order_by(Payment.attempted_at.desc(), Payment.id.desc())
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return list(payments)


def refund_payments(
    uow: UnitOfWork,
    invoice: Invoice,
    payments: Sequence[Payment],
    amount: int,
    credit_note: CreditNote,
    at: datetime,
) -> None:
    """Refund `amount` from the payments, newest first (API.md), as far as each can."""
    left = amount
    for payment in payments:
        if left == 0:
            break
        part = min(left, payment.refundable)
        if part > 0:
            _refund(uow, invoice, payment, part, None, credit_note, at)
            left -= part
    # The credit note's rules refused a refund larger than the payments' total.
    assert left == 0


async def create_refund(uow: UnitOfWork, command: CreateRefund) -> Refund:
    missing = PaymentNotFound(f"No payment {command.payment_id}.")
    invoice = await load_invoice_of(uow, Payment, command.payment_id, missing)
    payment = await _locked(uow, Payment, command.payment_id)
    if payment.status != PaymentStatus.SUCCEEDED:
        raise PaymentNotRefundable(f"The payment is {payment.status}; only succeeded ones refund.")
    left = payment.refundable
    if command.amount is None:
        amount = left
    else:
        try:
            amount = to_minor(command.amount, payment.currency)
        except MoneyError as exc:
            raise ValidationFailed("amount", str(exc)) from None
        if amount <= 0:
            raise ValidationFailed("amount", "must be greater than 0")
    if amount > left or amount == 0:
        raise AmountExceedsRefundable(
            f"At most {format_minor(left, payment.currency)} {payment.currency} of this "
            "payment can still be refunded."
        )
    return _refund(uow, invoice, payment, amount, command.reason, None, utcnow())


def _refund(
    uow: UnitOfWork,
    invoice: Invoice,
    payment: Payment,
    amount: int,
    reason: str | None,
    credit_note: CreditNote | None,
    at: datetime,
) -> Refund:
    assert payment.gateway_reference is not None, "a succeeded payment has its reference"
    assert uow.context.tenant_id is not None
    refund = Refund.request(
        payment_id=payment.id,
        invoice_id=invoice.id,
        charge_reference=payment.gateway_reference,
        amount=amount,
        currency=payment.currency,
        reason=reason,
        credit_note=credit_note,
        tenant_id=uow.context.tenant_id,
        at=at,
    )
    payment.take_refund(amount)
    invoice.take_refund(amount, at)
    uow.session.add(uow.track(refund))
    return refund


async def apply_refund_event(uow: UnitOfWork, command: ApplyRefundEvent) -> str:
    """processed, ignored (recorded with why) or duplicate (already entered, not applied)."""
    entered = await inbox.enter(
        uow.session, GATEWAY, command.webhook_id, command.type, uow.context.tenant_id
    )
    if not entered:
        return "duplicate"
    missing = RefundNotFound(f"No refund {command.refund_id}.")
    invoice = await load_invoice_of(uow, Refund, command.refund_id, missing)
    refund = await _locked(uow, Refund, command.refund_id)
    payment = await _locked(uow, Payment, refund.payment_id)
    why = _why_not_applicable(refund, command)
    if why is None:
        now = utcnow()
        try:
            if command.type == "refund.succeeded":
                assert command.gateway_reference is not None
                refund.succeed(command.gateway_reference, now)
            else:
                refund.fail(command.failure_code or "refund_failed", command.gateway_reference, now)
                payment.give_back_refund(refund.amount)
                invoice.give_back_refund(refund.amount, now)
        except InvalidRefundTransition as exc:
            why = exc.detail
    if why is not None:
        await inbox.mark_ignored(uow.session, GATEWAY, command.webhook_id, why)
        return "ignored"
    return "processed"


Locked = TypeVar("Locked", Payment, Refund)


async def _locked(uow: UnitOfWork, model: type[Locked], id_: uuid.UUID) -> Locked:
    row = (
        await uow.session.scalars(
            select(model)
            .where(model.id == id_)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
    ).one()
    return uow.track(row)


def _why_not_applicable(refund: Refund, command: ApplyRefundEvent) -> str | None:
    if command.type not in ("refund.succeeded", "refund.failed"):
        return f"unhandled event type {command.type!r}"
    try:
        amount = to_minor(parse_decimal(command.amount, max_places=6), refund.currency)
    except MoneyError:
        amount = None
    if command.currency != refund.currency or amount != refund.amount:
        return (
            f"the webhook's {command.amount} {command.currency} is not the refund's "
            f"{refund.money()} {refund.currency}"
        )
    if command.type == "refund.succeeded" and not command.gateway_reference:
        return "a succeeded refund needs its gatewayReference"
    return None
