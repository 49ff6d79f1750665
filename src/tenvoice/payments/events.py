import uuid
from dataclasses import dataclass
from typing import ClassVar


@dataclass(frozen=True, slots=True)
class _PaymentEvent:
    entity_type: ClassVar[str] = "payment"
    payment_id: uuid.UUID
    invoice_id: uuid.UUID
    amount: str
    currency: str

    @property
    def entity_id(self) -> uuid.UUID:
        return self.payment_id

    @property
    def stream_id(self) -> uuid.UUID:
        # Payment events are read on their invoice's timeline (API.md).
        return self.invoice_id


@dataclass(frozen=True, slots=True)
class PaymentAttempted(_PaymentEvent):
    event_type: ClassVar[str] = "payment.attempted"
    method: str


@dataclass(frozen=True, slots=True)
class PaymentSucceeded(_PaymentEvent):
    event_type: ClassVar[str] = "payment.succeeded"
    gateway_reference: str


@dataclass(frozen=True, slots=True)
class PaymentFailed(_PaymentEvent):
    event_type: ClassVar[str] = "payment.failed"
    gateway_reference: str | None
    failure_code: str
    failure_message: str


@dataclass(frozen=True, slots=True)
class ChargeRequested(_PaymentEvent):
    """The payment is to be sent to the gateway: handled by writing an outbox job.

    Not on the timeline (payment.attempted already is); it carries what only the gateway
    needs, such as the single-use payment token, which is never stored on the payment.
    """

    event_type: ClassVar[str] = "payment.charge_requested"
    method: str
    # None: the gateway's default (tok_success for the simulated one).
    payment_token: str | None
