"""Sending a payment to the gateway: an outbox job, written with the payment itself."""

from tenvoice.gateway.simulator import CHARGE, DEFAULT_TOKEN
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
