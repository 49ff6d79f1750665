"""Credit notes, refunds and customer balances as stored, with their state machines.

What a credit note may credit is worked out in amounts.py and what a balance may do in
balance.py, both without I/O; these aggregates keep the results and record the events.
"""

import uuid
from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal
from enum import StrEnum

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    ForeignKeyConstraint,
    Index,
    Integer,
    String,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from tenvoice.credits import events
from tenvoice.credits.amounts import CreditNoteAmounts
from tenvoice.credits.balance import Balance, Entry
from tenvoice.credits.errors import CreditNoteNotVoidable, InvalidRefundTransition

# The tables these keys reference, on the metadata before the mappers are configured.
from tenvoice.customers import models as _customers  # noqa: F401
from tenvoice.invoices.amounts import Credited
from tenvoice.payments import models as _payments  # noqa: F401
from tenvoice.platform.db import Base, ScaledDecimal, utcnow
from tenvoice.platform.ids import uuid7
from tenvoice.platform.messages import EventRecorder
from tenvoice.platform.money import format_minor
from tenvoice.platform.tenancy import TenantOwned


class CreditNoteStatus(StrEnum):
    ISSUED = "issued"
    VOID = "void"


class CreditNoteReason(StrEnum):
    DUPLICATE = "duplicate"
    FRAUDULENT = "fraudulent"
    ORDER_CHANGE = "order_change"
    PRODUCT_UNSATISFACTORY = "product_unsatisfactory"


class RefundStatus(StrEnum):
    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class RefundReason(StrEnum):
    DUPLICATE = "duplicate"
    FRAUDULENT = "fraudulent"
    REQUESTED_BY_CUSTOMER = "requested_by_customer"


class CreditNoteLine(TenantOwned, Base):
    __tablename__ = "credit_note_lines"
    __table_args__ = (
        ForeignKeyConstraint(
            ["tenant_id", "credit_note_id"],
            ["credit_notes.tenant_id", "credit_notes.id"],
            ondelete="CASCADE",
        ),
        ForeignKeyConstraint(
            ["tenant_id", "invoice_item_id"], ["invoice_items.tenant_id", "invoice_items.id"]
        ),
        Index("ix_credit_note_lines_tenant_note", "tenant_id", "credit_note_id", "position"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid7)
    credit_note_id: Mapped[uuid.UUID]
    position: Mapped[int] = mapped_column(Integer)
    invoice_item_id: Mapped[uuid.UUID | None]
    description: Mapped[str] = mapped_column(String(500))
    quantity: Mapped[Decimal | None] = mapped_column(ScaledDecimal(4))
    unit_amount: Mapped[Decimal] = mapped_column(ScaledDecimal(6))
    tax_rate: Mapped[Decimal] = mapped_column(ScaledDecimal(4))
    subtotal: Mapped[int] = mapped_column(BigInteger)
    tax: Mapped[int] = mapped_column(BigInteger)
    total: Mapped[int] = mapped_column(BigInteger)


class CreditNote(TenantOwned, EventRecorder, Base):
    __tablename__ = "credit_notes"
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id", "invoice_id"], ["invoices.tenant_id", "invoices.id"]),
        ForeignKeyConstraint(["tenant_id", "customer_id"], ["customers.tenant_id", "customers.id"]),
        Index(
            "uq_credit_notes_tenant_invoice_number",
            "tenant_id",
            "invoice_id",
            "number",
            unique=True,
        ),
        Index("ix_credit_notes_tenant_created", "tenant_id", "created_at", "id"),
        Index(
            "ix_credit_notes_tenant_customer_created",
            "tenant_id",
            "customer_id",
            "created_at",
            "id",
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid7)
    number: Mapped[str] = mapped_column(String(48))
    invoice_id: Mapped[uuid.UUID]
    customer_id: Mapped[uuid.UUID]
    currency: Mapped[str] = mapped_column(String(3))
    status: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(String(32))
    memo: Mapped[str | None] = mapped_column(Text)
    metadata_: Mapped[dict[str, str]] = mapped_column("metadata")
    subtotal: Mapped[int] = mapped_column(BigInteger)
    tax: Mapped[int] = mapped_column(BigInteger)
    total: Mapped[int] = mapped_column(BigInteger)
    pre_payment_amount: Mapped[int] = mapped_column(BigInteger)
    refund_amount: Mapped[int] = mapped_column(BigInteger)
    credit_amount: Mapped[int] = mapped_column(BigInteger)
    out_of_band_amount: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    voided_at: Mapped[datetime | None] = mapped_column(default=None)

    lines: Mapped[list[CreditNoteLine]] = relationship(
        order_by=CreditNoteLine.position, cascade="all, delete-orphan", lazy="raise"
    )
    # The refunds it made, kept with it so that its answer and its event need no read-back.
    refunds: Mapped[list["Refund"]] = relationship(
        order_by="Refund.created_at", lazy="raise", back_populates="credit_note"
    )

    @classmethod
    def issue(
        cls,
        *,
        invoice_id: uuid.UUID,
        customer_id: uuid.UUID,
        currency: str,
        number: str,
        amounts: CreditNoteAmounts,
        reason: str | None,
        memo: str | None,
        metadata: dict[str, str],
        at: datetime,
    ) -> "CreditNote":
        note = cls(
            id=uuid7(),
            number=number,
            invoice_id=invoice_id,
            customer_id=customer_id,
            currency=currency,
            status=CreditNoteStatus.ISSUED.value,
            reason=reason,
            memo=memo,
            metadata_=metadata,
            subtotal=amounts.subtotal,
            tax=amounts.tax,
            total=amounts.total,
            pre_payment_amount=amounts.pre_payment,
            refund_amount=amounts.refund,
            credit_amount=amounts.credit,
            out_of_band_amount=amounts.out_of_band,
            created_at=at,
            refunds=[],
            lines=[
                CreditNoteLine(
                    id=uuid7(),
                    position=position,
                    invoice_item_id=line.item_id,
                    description=line.description,
                    quantity=line.quantity,
                    unit_amount=line.unit_amount,
                    tax_rate=line.tax_rate,
                    subtotal=line.subtotal,
                    tax=line.tax,
                    total=line.total,
                )
                for position, line in enumerate(amounts.lines)
            ],
        )
        note.record(
            events.CreditNoteCreated(
                note.id,
                invoice_id,
                number,
                note.money(note.total),
                currency,
                note.money(note.pre_payment_amount),
                note.money(note.refund_amount),
                note.money(note.credit_amount),
                note.money(note.out_of_band_amount),
            )
        )
        return note

    def money(self, minor: int) -> str:
        return format_minor(minor, self.currency)

    def taken(self) -> Credited:
        """What it takes of its invoice: counted when issued, given back when voided."""
        return Credited(
            self.total,
            self.pre_payment_amount,
            [
                (line.invoice_item_id, line.quantity or Decimal(0), line.subtotal)
                for line in self.lines
                if line.invoice_item_id is not None
            ],
        )

    def void(self, refund_statuses: Iterable[str], invoice_status: str, at: datetime) -> None:
        """Void a note whose refunds, if any, all failed. The caller undoes its effect on
        the invoice and the balance, which refuses credit already spent."""
        if self.status != CreditNoteStatus.ISSUED:
            raise CreditNoteNotVoidable(f"The credit note is {self.status} already.")
        if any(status != RefundStatus.FAILED for status in refund_statuses):
            raise CreditNoteNotVoidable(
                "Its refunds are pending or went through: money has gone back to the customer."
            )
        if self.pre_payment_amount and invoice_status == "paid":
            # A paid invoice stays paid: what this note took off what was owed stays taken.
            raise CreditNoteNotVoidable(
                "It lowered what the invoice owed, and the invoice is now paid; issue another "
                "credit note instead."
            )
        self.status = CreditNoteStatus.VOID.value
        self.voided_at = at
        self.record(
            events.CreditNoteVoided(
                self.id, self.invoice_id, self.number, self.money(self.total), self.currency
            )
        )


class Refund(TenantOwned, EventRecorder, Base):
    __tablename__ = "refunds"
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id", "payment_id"], ["payments.tenant_id", "payments.id"]),
        ForeignKeyConstraint(["tenant_id", "invoice_id"], ["invoices.tenant_id", "invoices.id"]),
        ForeignKeyConstraint(
            ["tenant_id", "credit_note_id"], ["credit_notes.tenant_id", "credit_notes.id"]
        ),
        Index("ix_refunds_tenant_created", "tenant_id", "created_at", "id"),
        Index("ix_refunds_tenant_payment_created", "tenant_id", "payment_id", "created_at", "id"),
        Index("ix_refunds_tenant_invoice_created", "tenant_id", "invoice_id", "created_at", "id"),
        Index("ix_refunds_tenant_credit_note", "tenant_id", "credit_note_id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid7)
    payment_id: Mapped[uuid.UUID]
    invoice_id: Mapped[uuid.UUID]
    credit_note_id: Mapped[uuid.UUID | None]
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    status: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(String(32))
    failure_code: Mapped[str | None] = mapped_column(String(64), default=None)
    gateway_reference: Mapped[str | None] = mapped_column(String(128), default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    succeeded_at: Mapped[datetime | None] = mapped_column(default=None)
    failed_at: Mapped[datetime | None] = mapped_column(default=None)

    credit_note: Mapped[CreditNote | None] = relationship(lazy="raise", back_populates="refunds")
    # Written with the refund (the unit of work inserts the refund first).
    route: Mapped["RefundRoute"] = relationship(lazy="raise", cascade="save-update")

    @classmethod
    def request(
        cls,
        *,
        payment_id: uuid.UUID,
        invoice_id: uuid.UUID,
        charge_reference: str,
        amount: int,
        currency: str,
        reason: str | None,
        credit_note: CreditNote | None,
        tenant_id: uuid.UUID,
        at: datetime,
    ) -> "Refund":
        """A pending refund of `amount`, which the caller has taken from the payment."""
        refund = cls(
            id=uuid7(),
            payment_id=payment_id,
            invoice_id=invoice_id,
            credit_note_id=None if credit_note is None else credit_note.id,
            amount=amount,
            currency=currency,
            status=RefundStatus.PENDING.value,
            reason=reason,
            created_at=at,
        )
        refund.route = RefundRoute(refund_id=refund.id, tenant_id=tenant_id)
        if credit_note is not None:
            credit_note.refunds.append(refund)
        money = refund.money()
        refund.record(
            events.RefundCreated(
                refund.id, payment_id, invoice_id, money, currency, refund.credit_note_id
            )
        )
        refund.record(
            events.RefundRequested(
                refund.id, payment_id, invoice_id, money, currency, charge_reference
            )
        )
        return refund

    def money(self) -> str:
        return format_minor(self.amount, self.currency)

    def succeed(self, reference: str, at: datetime) -> None:
        self._leave_pending("succeed")
        self.status = RefundStatus.SUCCEEDED.value
        self.gateway_reference = reference
        self.succeeded_at = at
        self.record(
            events.RefundSucceeded(
                self.id, self.payment_id, self.invoice_id, self.money(), self.currency, reference
            )
        )

    def fail(self, code: str, reference: str | None, at: datetime) -> None:
        self._leave_pending("fail")
        self.status = RefundStatus.FAILED.value
        self.failure_code = code
        self.gateway_reference = reference
        self.failed_at = at
        self.record(
            events.RefundFailed(
                self.id, self.payment_id, self.invoice_id, self.money(), self.currency, code
            )
        )

    def _leave_pending(self, action: str) -> None:
        if self.status != RefundStatus.PENDING:
            raise InvalidRefundTransition(f"Cannot {action} a refund that is {self.status}.")


class RefundRoute(Base):
    """Which tenant a refund belongs to, for the gateway's webhook, which names only the
    refund (as PaymentRoute does for payments)."""

    __tablename__ = "refund_routes"
    __table_args__ = (
        ForeignKeyConstraint(
            ["tenant_id", "refund_id"], ["refunds.tenant_id", "refunds.id"], ondelete="CASCADE"
        ),
    )

    refund_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    tenant_id: Mapped[uuid.UUID]


class BalanceTransaction(TenantOwned, Base):
    __tablename__ = "balance_transactions"
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id", "customer_id"], ["customers.tenant_id", "customers.id"]),
        Index(
            "ix_balance_transactions_tenant_customer_created",
            "tenant_id",
            "customer_id",
            "created_at",
            "id",
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid7)
    customer_id: Mapped[uuid.UUID]
    currency: Mapped[str] = mapped_column(String(3))
    amount: Mapped[int] = mapped_column(BigInteger)
    type: Mapped[str] = mapped_column(String(32))
    credit_note_id: Mapped[uuid.UUID | None]
    invoice_id: Mapped[uuid.UUID | None]
    description: Mapped[str | None] = mapped_column(String(500))
    balance_after: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class CustomerBalance(TenantOwned, EventRecorder, Base):
    """A customer's credit in one currency. Its row is locked while it changes, and every
    change writes the ledger entry that records it."""

    __tablename__ = "customer_balances"
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id", "customer_id"], ["customers.tenant_id", "customers.id"]),
        CheckConstraint("amount >= 0", name="ck_customer_balances_not_negative"),
    )

    customer_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    currency: Mapped[str] = mapped_column(String(3), primary_key=True)
    amount: Mapped[int] = mapped_column(BigInteger)

    def rules(self) -> Balance:
        return Balance(self.currency, self.amount)

    def enter(
        self,
        change: tuple[Balance, Entry | None],
        *,
        credit_note_id: uuid.UUID | None = None,
        invoice_id: uuid.UUID | None = None,
        description: str | None = None,
        at: datetime,
    ) -> BalanceTransaction | None:
        """Keep what a rule of Balance decided: the new amount and its ledger entry.

        `at` is taken under the balance's lock, so that the ledger read in time order is the
        order the balance changed in (a command that waited for the lock changed it last)."""
        balance, entry = change
        if entry is None:
            return None
        self.amount = balance.amount
        self.record(
            events.CustomerBalanceChanged(
                self.customer_id,
                self.currency,
                format_minor(entry.amount, self.currency),
                format_minor(entry.balance_after, self.currency),
                entry.type.value,
                credit_note_id,
                invoice_id,
            )
        )
        return BalanceTransaction(
            id=uuid7(),
            customer_id=self.customer_id,
            currency=self.currency,
            amount=entry.amount,
            type=entry.type.value,
            credit_note_id=credit_note_id,
            invoice_id=invoice_id,
            description=description,
            balance_after=entry.balance_after,
            created_at=at,
        )
