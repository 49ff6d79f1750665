"""The Payment aggregate: one attempt to pay an invoice, settled only by the gateway."""

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import BigInteger, ForeignKeyConstraint, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from tenvoice.invoices.models import Invoice
from tenvoice.payments import events
from tenvoice.payments.errors import InvalidPaymentTransition
from tenvoice.platform.db import Base
from tenvoice.platform.ids import uuid7
from tenvoice.platform.messages import EventRecorder
from tenvoice.platform.money import format_minor
from tenvoice.platform.tenancy import TenantOwned


class PaymentStatus(StrEnum):
    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class PaymentMethod(StrEnum):
    CARD = "card"
    BANK_TRANSFER = "bank_transfer"
    QRIS = "qris"


class Payment(TenantOwned, EventRecorder, Base):
    __tablename__ = "payments"
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id", "invoice_id"], ["invoices.tenant_id", "invoices.id"]),
        Index("ix_payments_tenant_attempted", "tenant_id", "attempted_at", "id"),
        Index(
            "ix_payments_tenant_invoice_attempted", "tenant_id", "invoice_id", "attempted_at", "id"
        ),
        Index("ix_payments_tenant_status_attempted", "tenant_id", "status", "attempted_at", "id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid7)
    invoice_id: Mapped[uuid.UUID]
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    method: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))
    failure_code: Mapped[str | None] = mapped_column(String(64), default=None)
    failure_message: Mapped[str | None] = mapped_column(String(500), default=None)
    gateway_reference: Mapped[str | None] = mapped_column(String(128), default=None)
    # Refunds pending or made: what is left to refund is amount - amount_refunded.
    amount_refunded: Mapped[int] = mapped_column(BigInteger, default=0)
    attempted_at: Mapped[datetime]
    succeeded_at: Mapped[datetime | None] = mapped_column(default=None)
    failed_at: Mapped[datetime | None] = mapped_column(default=None)

    @classmethod
    def attempt(
        cls, invoice: Invoice, amount: int, method: PaymentMethod, token: str | None, at: datetime
    ) -> "Payment":
        """A new pending payment against `invoice`, whose balance the caller has reserved."""
        payment = cls(
            id=uuid7(),
            invoice_id=invoice.id,
            amount=amount,
            currency=invoice.currency,
            method=method.value,
            status=PaymentStatus.PENDING.value,
            amount_refunded=0,
            attempted_at=at,
        )
        money = payment.money()
        payment.record(
            events.PaymentAttempted(payment.id, invoice.id, money, payment.currency, method.value)
        )
        payment.record(
            events.ChargeRequested(
                payment.id, invoice.id, money, payment.currency, method.value, token
            )
        )
        return payment

    def money(self) -> str:
        return format_minor(self.amount, self.currency)

    def succeed(self, reference: str, at: datetime) -> None:
        self._leave_pending("succeed")
        self.status = PaymentStatus.SUCCEEDED.value
        self.gateway_reference = reference
        self.succeeded_at = at
        self.record(
            events.PaymentSucceeded(
                self.id, self.invoice_id, self.money(), self.currency, reference
            )
        )

    def fail(self, code: str, message: str, reference: str | None, at: datetime) -> None:
        self._leave_pending("fail")
        self.status = PaymentStatus.FAILED.value
        self.failure_code = code
        self.failure_message = message
        self.gateway_reference = reference
        self.failed_at = at
        self.record(
            events.PaymentFailed(
                self.id, self.invoice_id, self.money(), self.currency, reference, code, message
            )
        )

    @property
    def refundable(self) -> int:
        """What refunds may still take: nothing unless the payment went through."""
        if self.status != PaymentStatus.SUCCEEDED:
            return 0
        return self.amount - self.amount_refunded

    def take_refund(self, amount: int) -> None:
        """Hold `amount` for a refund: a pending refund already counts against the payment."""
        assert 0 < amount <= self.refundable
        self.amount_refunded += amount

    def give_back_refund(self, amount: int) -> None:
        """A refund failed: the money never left, so it can be refunded again."""
        assert 0 < amount <= self.amount_refunded
        self.amount_refunded -= amount

    def _leave_pending(self, action: str) -> None:
        if self.status != PaymentStatus.PENDING:
            raise InvalidPaymentTransition(f"Cannot {action} a payment that is {self.status}.")


class PaymentRoute(Base):
    """Which tenant a payment belongs to, for callers that know only the payment id.

    The gateway's webhook names a payment and nothing else; this platform table (like
    `api_keys`) resolves the tenant before any tenant-owned row is read, so the webhook is
    then applied inside that tenant's scope like any other command.
    """

    __tablename__ = "payment_routes"
    __table_args__ = (
        ForeignKeyConstraint(
            ["tenant_id", "payment_id"], ["payments.tenant_id", "payments.id"], ondelete="CASCADE"
        ),
    )

    payment_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    tenant_id: Mapped[uuid.UUID]
