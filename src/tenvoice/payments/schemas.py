from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

from pydantic import BeforeValidator, ConfigDict, Field

from tenvoice.payments.models import PaymentMethod
from tenvoice.platform.money import format_minor
from tenvoice.platform.schemas import NOT_BLANK, AmountInput, InputModel, OutputModel


class PaymentCreate(InputModel):
    invoice_id: UUID
    # Positive, in at most the invoice currency's minor unit: checked once the invoice is
    # known (422 on the amount either way).
    amount: AmountInput
    method: PaymentMethod
    payment_token: Annotated[str, Field(min_length=1, max_length=255, pattern=NOT_BLANK)] | None = (
        None
    )


class PaymentOut(OutputModel):
    id: UUID
    invoice_id: UUID
    amount: str
    currency: str
    method: str
    status: str
    failure_code: str | None
    failure_message: str | None
    gateway_reference: str | None
    amount_refunded: str
    attempted_at: datetime
    succeeded_at: datetime | None
    failed_at: datetime | None


def payment_view(payment: Any) -> PaymentOut:
    """The wire form from the aggregate or from a selected row (same attribute names)."""
    return PaymentOut.model_construct(
        id=payment.id,
        invoice_id=payment.invoice_id,
        amount=format_minor(payment.amount, payment.currency),
        currency=payment.currency,
        method=payment.method,
        status=payment.status,
        failure_code=payment.failure_code,
        failure_message=payment.failure_message,
        gateway_reference=payment.gateway_reference,
        amount_refunded=format_minor(payment.amount_refunded, payment.currency),
        attempted_at=payment.attempted_at,
        succeeded_at=payment.succeeded_at,
        failed_at=payment.failed_at,
    )


async def payment_snapshot(payment: Any, _session: object) -> dict[str, Any]:
    return payment_view(payment).model_dump(mode="json", by_alias=True)


def _text(value: Any) -> Any:
    # Amounts may come as JSON numbers; they are compared as decimals, never as floats.
    return str(value) if isinstance(value, int | float) and not isinstance(value, bool) else value


class GatewayEventData(InputModel):
    """What the gateway says about a payment or a refund. Fields it adds later are ignored,
    not refused: a webhook receiver must keep working when its sender grows."""

    model_config = ConfigDict(extra="ignore")

    # A payment's events name the payment; a refund's name the refund.
    payment_id: UUID | None = None
    refund_id: UUID | None = None
    gateway_reference: Annotated[str, Field(min_length=1, max_length=128)] | None = None
    amount: Annotated[str, BeforeValidator(_text), Field(max_length=40)]
    currency: Annotated[str, Field(max_length=3)]
    failure_code: Annotated[str, Field(max_length=64)] | None = None
    failure_message: Annotated[str, Field(max_length=500)] | None = None


class GatewayEvent(InputModel):
    model_config = ConfigDict(extra="ignore")

    type: Annotated[str, Field(min_length=1, max_length=64)]
    data: GatewayEventData

    @property
    def about_refund(self) -> bool:
        data = self.data
        return self.type.startswith("refund.") or (
            data.payment_id is None and data.refund_id is not None
        )

    def missing_subject(self) -> str | None:
        """The field naming what the event is about, if it is missing."""
        if self.about_refund:
            return "data.refundId" if self.data.refund_id is None else None
        return "data.paymentId" if self.data.payment_id is None else None


class WebhookAck(OutputModel):
    status: str
