"""Credit note, refund and balance events. Credit notes and refunds are read on their
invoice's timeline (API.md); a balance change on its customer's."""

import uuid
from dataclasses import dataclass
from typing import ClassVar


@dataclass(frozen=True, slots=True)
class _CreditNoteEvent:
    entity_type: ClassVar[str] = "credit_note"
    credit_note_id: uuid.UUID
    invoice_id: uuid.UUID
    number: str
    total: str
    currency: str

    @property
    def entity_id(self) -> uuid.UUID:
        return self.credit_note_id

    @property
    def stream_id(self) -> uuid.UUID:
        return self.invoice_id


@dataclass(frozen=True, slots=True)
class CreditNoteCreated(_CreditNoteEvent):
    event_type: ClassVar[str] = "credit_note.created"
    pre_payment_amount: str
    refund_amount: str
    credit_amount: str
    out_of_band_amount: str


@dataclass(frozen=True, slots=True)
class CreditNoteVoided(_CreditNoteEvent):
    event_type: ClassVar[str] = "credit_note.voided"


@dataclass(frozen=True, slots=True)
class _RefundEvent:
    entity_type: ClassVar[str] = "refund"
    refund_id: uuid.UUID
    payment_id: uuid.UUID
    invoice_id: uuid.UUID
    amount: str
    currency: str

    @property
    def entity_id(self) -> uuid.UUID:
        return self.refund_id

    @property
    def stream_id(self) -> uuid.UUID:
        return self.invoice_id


@dataclass(frozen=True, slots=True)
class RefundCreated(_RefundEvent):
    event_type: ClassVar[str] = "refund.created"
    credit_note_id: uuid.UUID | None


@dataclass(frozen=True, slots=True)
class RefundSucceeded(_RefundEvent):
    event_type: ClassVar[str] = "refund.succeeded"
    gateway_reference: str


@dataclass(frozen=True, slots=True)
class RefundFailed(_RefundEvent):
    event_type: ClassVar[str] = "refund.failed"
    failure_code: str


@dataclass(frozen=True, slots=True)
class RefundRequested(_RefundEvent):
    """The refund is to be sent to the gateway: handled by writing an outbox job.

    Not on the timeline (refund.created already is); it carries the charge's reference,
    which is how the gateway knows what to refund.
    """

    event_type: ClassVar[str] = "refund.requested"
    charge_reference: str


@dataclass(frozen=True, slots=True)
class CustomerBalanceChanged:
    entity_type: ClassVar[str] = "customer"
    event_type: ClassVar[str] = "customer.balance_changed"
    customer_id: uuid.UUID
    currency: str
    # Signed: what the change added to the balance.
    amount: str
    balance: str
    type: str
    credit_note_id: uuid.UUID | None
    invoice_id: uuid.UUID | None

    @property
    def entity_id(self) -> uuid.UUID:
        return self.customer_id

    @property
    def stream_id(self) -> uuid.UUID:
        return self.customer_id
