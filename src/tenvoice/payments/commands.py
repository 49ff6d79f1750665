import uuid
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import select

from tenvoice.invoices.commands import load_invoice, load_invoice_of
from tenvoice.payments.errors import InvalidPaymentTransition, PaymentNotFound
from tenvoice.payments.models import Payment, PaymentMethod, PaymentRoute
from tenvoice.platform import inbox
from tenvoice.platform.db import utcnow
from tenvoice.platform.errors import ValidationFailed
from tenvoice.platform.money import MoneyError, parse_decimal, to_minor
from tenvoice.platform.uow import UnitOfWork

GATEWAY = "gateway"


@dataclass(frozen=True, slots=True)
class AttemptPayment:
    invoice_id: uuid.UUID
    amount: Decimal
    method: PaymentMethod
    payment_token: str | None


@dataclass(frozen=True, slots=True)
class ApplyGatewayEvent:
    """A verified gateway webhook: `payment.succeeded` or `payment.failed` (or unknown)."""

    webhook_id: str
    type: str
    payment_id: uuid.UUID
    gateway_reference: str | None
    amount: str
    currency: str
    failure_code: str | None
    failure_message: str | None


async def attempt_payment(uow: UnitOfWork, command: AttemptPayment) -> Payment:
    # The invoice stays locked until commit: attempts on one invoice queue here, and each
    # sees the balance the one before it reserved, so together they cannot overpay it.
    invoice = await load_invoice(uow, command.invoice_id, with_items=False)
    try:
        amount = to_minor(command.amount, invoice.currency)
    except MoneyError as exc:
        raise ValidationFailed("amount", str(exc)) from None
    if amount <= 0:
        raise ValidationFailed("amount", "must be greater than 0")
    invoice.reserve_payment(amount)
    payment = Payment.attempt(invoice, amount, command.method, command.payment_token, utcnow())
    uow.session.add(uow.track(payment))
    await uow.session.flush()
    uow.session.add(PaymentRoute(payment_id=payment.id, tenant_id=uow.context.tenant_id))
    return payment


async def apply_gateway_event(uow: UnitOfWork, command: ApplyGatewayEvent) -> str:
    """processed, ignored (recorded with why) or duplicate (already entered, not applied)."""
    entered = await inbox.enter(
        uow.session, GATEWAY, command.webhook_id, command.type, uow.context.tenant_id
    )
    if not entered:
        return "duplicate"
    # Invoice first, then payment: the order attempts take too, so the two never deadlock;
    # and the payment is read only under the invoice's lock, never stale. The invoice is
    # found through the payment in the same statement that locks it.
    missing = PaymentNotFound(f"No payment {command.payment_id}.")
    invoice = await load_invoice_of(uow, Payment, command.payment_id, missing)
    payment = uow.track(
        (
            await uow.session.scalars(
                select(Payment)
                .where(Payment.id == command.payment_id)
                .with_for_update()
                .execution_options(populate_existing=True)
            )
        ).one()
    )
    why = _why_not_applicable(payment, command)
    if why is None:
        now = utcnow()
        try:
            if command.type == "payment.succeeded":
                assert command.gateway_reference is not None
                payment.succeed(command.gateway_reference, now)
                invoice.apply_payment(payment.amount, now)
            else:
                payment.fail(
                    command.failure_code or "payment_failed",
                    command.failure_message or "The gateway declined the payment.",
                    command.gateway_reference,
                    now,
                )
                invoice.release_payment(payment.amount, now)
        except InvalidPaymentTransition as exc:
            why = exc.detail
    if why is not None:
        await inbox.mark_ignored(uow.session, GATEWAY, command.webhook_id, why)
        return "ignored"
    return "processed"


def _minor(amount: str, payment: Payment) -> int | None:
    try:
        return to_minor(parse_decimal(amount, max_places=6), payment.currency)
    except MoneyError:
        return None


def _why_not_applicable(payment: Payment, command: ApplyGatewayEvent) -> str | None:
    if command.type not in ("payment.succeeded", "payment.failed"):
        return f"unhandled event type {command.type!r}"
    if command.currency != payment.currency or _minor(command.amount, payment) != payment.amount:
        return (
            f"the webhook's {command.amount} {command.currency} is not the payment's "
            f"{payment.money()} {payment.currency}"
        )
    if command.type == "payment.succeeded" and not command.gateway_reference:
        return "a succeeded payment needs its gatewayReference"
    return None
