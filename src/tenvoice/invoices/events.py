import uuid
from dataclasses import dataclass
from typing import ClassVar


@dataclass(frozen=True, slots=True)
class _InvoiceEvent:
    entity_type: ClassVar[str] = "invoice"
    invoice_id: uuid.UUID

    @property
    def entity_id(self) -> uuid.UUID:
        return self.invoice_id

    @property
    def stream_id(self) -> uuid.UUID:
        return self.invoice_id


@dataclass(frozen=True, slots=True)
class InvoiceCreated(_InvoiceEvent):
    event_type: ClassVar[str] = "invoice.created"
    customer_id: uuid.UUID
    currency: str
    total: str
    item_count: int


@dataclass(frozen=True, slots=True)
class InvoiceUpdated(_InvoiceEvent):
    event_type: ClassVar[str] = "invoice.updated"
    changed: tuple[str, ...]
    total: str


@dataclass(frozen=True, slots=True)
class InvoiceDeleted(_InvoiceEvent):
    event_type: ClassVar[str] = "invoice.deleted"


@dataclass(frozen=True, slots=True)
class InvoiceFinalized(_InvoiceEvent):
    event_type: ClassVar[str] = "invoice.finalized"
    number: str
    total: str
    amount_due: str
    due_date: str


@dataclass(frozen=True, slots=True)
class InvoiceSent(_InvoiceEvent):
    event_type: ClassVar[str] = "invoice.sent"
    number: str
    customer_id: uuid.UUID


@dataclass(frozen=True, slots=True)
class InvoiceVoided(_InvoiceEvent):
    event_type: ClassVar[str] = "invoice.voided"
    number: str
    previous_status: str


@dataclass(frozen=True, slots=True)
class InvoiceMarkedUncollectible(_InvoiceEvent):
    event_type: ClassVar[str] = "invoice.marked_uncollectible"
    number: str
    amount_due: str


@dataclass(frozen=True, slots=True)
class InvoicePaid(_InvoiceEvent):
    event_type: ClassVar[str] = "invoice.paid"
    number: str
    amount_paid: str
    # Settled by a credit note, not by payments.
    paid_out_of_band: bool = False


@dataclass(frozen=True, slots=True)
class InvoiceOverdue(_InvoiceEvent):
    event_type: ClassVar[str] = "invoice.overdue"
    number: str
    amount_due: str
    due_date: str
