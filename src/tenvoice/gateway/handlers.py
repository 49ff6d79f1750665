"""Sending a payment or a refund to the gateway: an outbox job, written with it."""

from tenvoice.credits.events import RefundRequested
from tenvoice.gateway.simulator import CHARGE, DEFAULT_TOKEN, REFUND
from tenvoice.payments.events import ChargeRequested
from tenvoice.platform.outbox import enqueue
from tenvoice.platform.uow import UnitOfWork


async def request_charge(event: ChargeRequested, uow: UnitOfWork) -> None:
    enqueue(
        uow.session,
        CHARGE,
        {
            "paymentId": str(event.payment_id),
            "invoiceId": str(event.invoice_id),
            "amount": event.amount,
            "currency": event.currency,
            "method": event.method,
            "paymentToken": event.payment_token or DEFAULT_TOKEN,
        },
        tenant_id=uow.context.tenant_id,
    )


async def request_refund(event: RefundRequested, uow: UnitOfWork) -> None:
    enqueue(
        uow.session,
        REFUND,
        {
            "refundId": str(event.refund_id),
            "paymentId": str(event.payment_id),
            "chargeReference": event.charge_reference,
            "amount": event.amount,
            "currency": event.currency,
        },
        tenant_id=uow.context.tenant_id,
    )
