"""The Invoice aggregate: its lines, its money and its status machine. No I/O here."""

import uuid
from collections.abc import Sequence
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    BigInteger,
    Date,
    ForeignKeyConstraint,
    Index,
    Integer,
    String,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from tenvoice.invoices import events
from tenvoice.invoices.amounts import Credited, Line, amount_due, price_line
from tenvoice.invoices.errors import (
    AmountExceedsBalance,
    InvalidInvoiceTransition,
    InvoiceHasPendingPayments,
    InvoiceNotDeletable,
    InvoiceNotEditable,
    InvoiceNotPayable,
)
from tenvoice.platform.db import Base, ScaledDecimal, utcnow
from tenvoice.platform.errors import FieldError, ValidationFailed
from tenvoice.platform.ids import uuid7
from tenvoice.platform.messages import EventRecorder
from tenvoice.platform.money import (
    MAX_MINOR_UNITS,
    MoneyError,
    format_minor,
)
from tenvoice.platform.tenancy import TenantOwned


class InvoiceStatus(StrEnum):
    DRAFT = "draft"
    OPEN = "open"
    PAID = "paid"
    VOID = "void"
    UNCOLLECTIBLE = "uncollectible"


S = InvoiceStatus
TRANSITIONS: dict[InvoiceStatus, frozenset[InvoiceStatus]] = {
    S.DRAFT: frozenset({S.OPEN}),
    S.OPEN: frozenset({S.PAID, S.VOID, S.UNCOLLECTIBLE}),
    S.UNCOLLECTIBLE: frozenset({S.PAID, S.VOID}),
    S.PAID: frozenset(),
    S.VOID: frozenset(),
}
# Still owed money: the customer cannot be deleted and the invoice can take payments.
UNPAID_STATUSES = (S.OPEN.value, S.UNCOLLECTIBLE.value)
SENDABLE_STATUSES = (S.OPEN.value, S.UNCOLLECTIBLE.value)
MAX_ITEMS = 500


class InvoiceItem(TenantOwned, Base):
    __tablename__ = "invoice_items"
    __table_args__ = (
        ForeignKeyConstraint(
            ["tenant_id", "invoice_id"],
            ["invoices.tenant_id", "invoices.id"],
            ondelete="CASCADE",
        ),
        Index("ix_invoice_items_tenant_invoice", "tenant_id", "invoice_id", "position"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid7)
    invoice_id: Mapped[uuid.UUID]
    position: Mapped[int] = mapped_column(Integer)
    description: Mapped[str] = mapped_column(String(500))
    quantity: Mapped[Decimal] = mapped_column(ScaledDecimal(4))
    unit_price: Mapped[Decimal] = mapped_column(ScaledDecimal(6))
    tax_rate: Mapped[Decimal] = mapped_column(ScaledDecimal(4))
    subtotal: Mapped[int] = mapped_column(BigInteger)
    tax: Mapped[int] = mapped_column(BigInteger)
    total: Mapped[int] = mapped_column(BigInteger)
    # What issued credit notes took of it, kept here under the invoice's lock so that a new
    # note reads what is left with the invoice itself.
    credited_quantity: Mapped[Decimal] = mapped_column(ScaledDecimal(4), default=Decimal(0))
    credited_subtotal: Mapped[int] = mapped_column(BigInteger, default=0)


class Invoice(TenantOwned, EventRecorder, Base):
    __tablename__ = "invoices"
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id", "customer_id"], ["customers.tenant_id", "customers.id"]),
        Index("uq_invoices_tenant_number", "tenant_id", "number", unique=True),
        Index("ix_invoices_tenant_created", "tenant_id", "created_at", "id"),
        Index("ix_invoices_tenant_status_created", "tenant_id", "status", "created_at", "id"),
        Index(
            "ix_invoices_tenant_customer_created", "tenant_id", "customer_id", "created_at", "id"
        ),
        Index("ix_invoices_tenant_due", "tenant_id", "due_date", "id"),
        Index("ix_invoices_tenant_total", "tenant_id", "total", "id"),
        Index("ix_invoices_tenant_number_sort", "tenant_id", "number_sort", "id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid7)
    number: Mapped[str | None] = mapped_column(String(40))
    # What sort=number orders by (number_sort_key): as text, INV-2026-100000 would come
    # before INV-2026-99999.
    number_sort: Mapped[int | None] = mapped_column(BigInteger, default=None)
    customer_id: Mapped[uuid.UUID]
    currency: Mapped[str] = mapped_column(String(3))
    status: Mapped[str] = mapped_column(String(16))
    issue_date: Mapped[date] = mapped_column(Date)
    due_date: Mapped[date] = mapped_column(Date)
    subtotal: Mapped[int] = mapped_column(BigInteger)
    tax: Mapped[int] = mapped_column(BigInteger)
    total: Mapped[int] = mapped_column(BigInteger)
    amount_paid: Mapped[int] = mapped_column(BigInteger, default=0)
    # Payments sent to the gateway and not yet answered: reserved against the balance so
    # that concurrent attempts can never add up to more than is owed.
    amount_pending: Mapped[int] = mapped_column(BigInteger, default=0)
    # The pre-payment parts of its issued credit notes: what they took off what is owed.
    credited_amount: Mapped[int] = mapped_column(BigInteger, default=0)
    # Refunds pending or made of its payments (never lowers amount_paid).
    amount_refunded: Mapped[int] = mapped_column(BigInteger, default=0)
    # The customer's credit it took when finalized.
    applied_balance: Mapped[int] = mapped_column(BigInteger, default=0)
    # Settled by a credit note rather than by payments.
    paid_out_of_band: Mapped[bool] = mapped_column(default=False)
    # Credit notes ever issued (voided ones keep their numbers) and the total of those still
    # issued: a new note is numbered and limited by these, read under the invoice's lock.
    credit_notes_issued: Mapped[int] = mapped_column(Integer, default=0)
    credit_notes_total: Mapped[int] = mapped_column(BigInteger, default=0)
    memo: Mapped[str | None] = mapped_column(Text)
    metadata_: Mapped[dict[str, str]] = mapped_column("metadata")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    finalized_at: Mapped[datetime | None] = mapped_column(default=None)
    sent_at: Mapped[datetime | None] = mapped_column(default=None)
    paid_at: Mapped[datetime | None] = mapped_column(default=None)
    voided_at: Mapped[datetime | None] = mapped_column(default=None)
    marked_uncollectible_at: Mapped[datetime | None] = mapped_column(default=None)
    # When invoice.overdue was recorded: it is recorded once, however often it is checked.
    overdue_at: Mapped[datetime | None] = mapped_column(default=None)

    items: Mapped[list[InvoiceItem]] = relationship(
        order_by=InvoiceItem.position, cascade="all, delete-orphan", lazy="raise"
    )

    @classmethod
    def draft(
        cls,
        *,
        customer_id: uuid.UUID,
        currency: str,
        issue_date: date,
        due_date: date,
        lines: Sequence[Line],
        memo: str | None,
        metadata: dict[str, str],
    ) -> "Invoice":
        now = utcnow()
        invoice = cls(
            id=uuid7(),
            customer_id=customer_id,
            currency=currency,
            status=S.DRAFT.value,
            issue_date=issue_date,
            due_date=due_date,
            amount_paid=0,
            amount_pending=0,
            credited_amount=0,
            amount_refunded=0,
            applied_balance=0,
            paid_out_of_band=False,
            credit_notes_issued=0,
            credit_notes_total=0,
            memo=memo,
            metadata_=metadata,
            created_at=now,
            updated_at=now,
            items=[],
        )
        _check_dates(issue_date, due_date)
        invoice._set_lines(lines)
        invoice.record(
            events.InvoiceCreated(
                invoice.id, customer_id, currency, invoice.money(invoice.total), len(lines)
            )
        )
        return invoice

    # -- reading -----------------------------------------------------------------------

    @property
    def amount_due(self) -> int:
        return amount_due(self)

    def money(self, minor: int) -> str:
        return format_minor(minor, self.currency)

    # -- drafts ------------------------------------------------------------------------

    def revise(self, changes: dict[str, Any], lines: Sequence[Line] | None) -> None:
        """Apply a draft edit; `lines`, when given, replace every line."""
        if self.status != S.DRAFT:
            raise InvoiceNotEditable(f"The invoice is {self.status}; only drafts can be edited.")
        changed = [name for name, value in changes.items() if getattr(self, name) != value]
        if "currency" in changed and lines is None:
            # The stored lines were priced in the old currency's minor units.
            lines = [_line_of(item) for item in self.items]
        _check_dates(
            changes.get("issue_date", self.issue_date), changes.get("due_date", self.due_date)
        )
        for name in changed:
            setattr(self, name, changes[name])
        if lines is not None:
            self._set_lines(lines)
            changed.append("items")
        if not changed:
            return
        self.updated_at = utcnow()
        wire = tuple(dict.fromkeys(_WIRE_NAMES.get(name, name) for name in changed))
        self.record(events.InvoiceUpdated(self.id, wire, self.money(self.total)))

    def discard(self) -> None:
        if self.status != S.DRAFT:
            raise InvoiceNotDeletable(f"The invoice is {self.status}; void it instead.")
        self.record(events.InvoiceDeleted(self.id))

    def _set_lines(self, lines: Sequence[Line]) -> None:
        items: list[InvoiceItem] = []
        errors: list[FieldError] = []
        for position, line in enumerate(lines):
            try:
                subtotal, tax = price_line(line, self.currency)
            except MoneyError as exc:
                errors.append(FieldError(f"items[{position}]", str(exc)))
                continue
            items.append(
                InvoiceItem(
                    id=uuid7(),
                    position=position,
                    description=line.description,
                    quantity=line.quantity,
                    unit_price=line.unit_price,
                    tax_rate=line.tax_rate,
                    subtotal=subtotal,
                    tax=tax,
                    total=subtotal + tax,
                )
            )
        if errors:
            first, *more = errors
            raise ValidationFailed(first.field, first.message, *more)
        total = sum(item.total for item in items)
        if total > MAX_MINOR_UNITS:
            raise ValidationFailed("items", "the invoice total is too large")
        self.items = items
        self.subtotal = sum(item.subtotal for item in items)
        self.tax = sum(item.tax for item in items)
        self.total = total

    # -- the status machine ------------------------------------------------------------

    def finalize(self, number: str, at: datetime, applied_balance: int = 0) -> None:
        """Issue the invoice; `applied_balance` (at most its total) is the customer's credit
        it takes, which lowers what is owed."""
        assert 0 <= applied_balance <= self.total
        self._move(S.OPEN, "finalize")
        self.applied_balance = applied_balance
        self.number = number
        self.number_sort = number_sort_key(number)
        self.finalized_at = self.updated_at = at
        self.record(
            events.InvoiceFinalized(
                self.id,
                number,
                self.money(self.total),
                self.money(self.amount_due),
                self.due_date.isoformat(),
            )
        )
        if self.amount_due == 0:
            # Nothing to collect: a zero invoice is settled the moment it is issued.
            self._settle(at)

    def send(self, at: datetime) -> None:
        if self.status not in SENDABLE_STATUSES:
            raise InvalidInvoiceTransition(f"A {self.status} invoice cannot be sent.")
        assert self.number is not None
        self.sent_at = self.updated_at = at
        self.record(events.InvoiceSent(self.id, self.number, self.customer_id))

    def void(self, at: datetime) -> None:
        previous = self.status
        self.check_transition(S.VOID, "void")
        if self.amount_pending:
            # The gateway may still take the customer's money; it must land on a live invoice.
            raise InvoiceHasPendingPayments(
                "Payments are awaiting the gateway; void the invoice once they are settled."
            )
        self._move(S.VOID, "void")
        self.voided_at = self.updated_at = at
        assert self.number is not None
        self.record(events.InvoiceVoided(self.id, self.number, previous))

    def mark_uncollectible(self, at: datetime) -> None:
        self._move(S.UNCOLLECTIBLE, "mark uncollectible")
        self.marked_uncollectible_at = self.updated_at = at
        assert self.number is not None
        self.record(
            events.InvoiceMarkedUncollectible(self.id, self.number, self.money(self.amount_due))
        )

    def record_overdue(self, today: date, at: datetime) -> None:
        """Record, once, that an open invoice's due date has passed unpaid."""
        if self.status != S.OPEN or self.due_date >= today or self.overdue_at is not None:
            return
        assert self.number is not None
        self.overdue_at = at
        self.record(
            events.InvoiceOverdue(
                self.id, self.number, self.money(self.amount_due), self.due_date.isoformat()
            )
        )

    # -- payments ----------------------------------------------------------------------

    @property
    def payable_balance(self) -> int:
        """What a new payment may still cover: owed, less what the gateway is working on."""
        return self.amount_due - self.amount_pending

    def reserve_payment(self, amount: int) -> None:
        """Hold `amount` for a payment on its way to the gateway."""
        if self.status not in UNPAID_STATUSES:
            raise InvoiceNotPayable(f"The invoice is {self.status}; it takes no payments.")
        if amount > self.payable_balance:
            raise AmountExceedsBalance(
                f"At most {self.money(self.payable_balance)} {self.currency} can be paid now "
                f"({self.money(self.amount_due)} due, {self.money(self.amount_pending)} pending)."
            )
        self.amount_pending += amount

    def apply_payment(self, amount: int, at: datetime) -> None:
        """A reserved payment went through: it is paid, and may settle the invoice."""
        self.amount_pending -= amount
        self.amount_paid += amount
        self.updated_at = at
        if self.amount_due == 0 and self.status != S.PAID:
            self._settle(at)

    def release_payment(self, amount: int, at: datetime) -> None:
        """A reserved payment failed: its amount is owed again."""
        self.amount_pending -= amount
        self.updated_at = at

    # -- credit notes and refunds -------------------------------------------------------

    def credit(self, note: "Credited", at: datetime) -> None:
        """A credit note was issued: it counts against what is left to credit, and its
        pre-payment part comes off what is owed, settling the invoice if nothing is left
        (API.md: paidOutOfBand)."""
        assert 0 <= note.pre_payment <= max(0, self.amount_due - self.amount_pending)
        self._count(note, 1)
        self.credit_notes_issued += 1
        self.updated_at = at
        if note.pre_payment and self.amount_due == 0:
            self._settle(at, out_of_band=True)

    def uncredit(self, note: "Credited", at: datetime) -> None:
        """A credit note was voided: what it took is left to credit again, and what it took
        off what is owed is owed again (never on a paid invoice: the note refuses first)."""
        assert self.status in UNPAID_STATUSES or note.pre_payment == 0
        self._count(note, -1)
        self.updated_at = at

    def _count(self, note: "Credited", sign: int) -> None:
        self.credited_amount += sign * note.pre_payment
        self.credit_notes_total += sign * note.total
        items = {item.id: item for item in self.items}
        for item_id, quantity, subtotal in note.items:
            item = items[item_id]
            item.credited_quantity += sign * quantity
            item.credited_subtotal += sign * subtotal

    def take_refund(self, amount: int, at: datetime) -> None:
        self.amount_refunded += amount
        self.updated_at = at

    def give_back_refund(self, amount: int, at: datetime) -> None:
        """A refund failed: its amount is no longer counted as refunded."""
        self.amount_refunded -= amount
        self.updated_at = at

    def _settle(self, at: datetime, *, out_of_band: bool = False) -> None:
        self._move(S.PAID, "pay")
        self.paid_at = self.updated_at = at
        self.paid_out_of_band = out_of_band
        assert self.number is not None
        self.record(
            events.InvoicePaid(self.id, self.number, self.money(self.amount_paid), out_of_band)
        )

    def check_transition(self, target: InvoiceStatus, action: str) -> None:
        current = InvoiceStatus(self.status)
        if target not in TRANSITIONS[current]:
            raise InvalidInvoiceTransition(f"Cannot {action} an invoice that is {current}.")

    def _move(self, target: InvoiceStatus, action: str) -> None:
        self.check_transition(target, action)
        self.status = target.value


class InvoiceNumberCounter(TenantOwned, Base):
    """The last invoice number issued per tenant and year.

    Taken with an upsert that holds the row's lock until commit, so numbers are unique and,
    since a rolled-back finalize rolls its increment back too, gap-free.
    """

    __tablename__ = "invoice_number_counters"

    year: Mapped[int] = mapped_column(Integer, primary_key=True)
    last_value: Mapped[int] = mapped_column(BigInteger)


_WIRE_NAMES = {
    "metadata_": "metadata",
    "customer_id": "customerId",
    "issue_date": "issueDate",
    "due_date": "dueDate",
}


# A tenant's yearly sequence stays far below this, so year and sequence share one BIGINT.
_SEQUENCES_PER_YEAR = 10**12


def number_sort_key(number: str) -> int:
    """`{prefix}-{YYYY}-{N}` as one integer in issue order: 2026 * 10**12 + N.

    The prefix plays no part: it may change, and the year's sequence runs on across it.
    """
    _prefix, year, sequence = number.rsplit("-", 2)
    return int(year) * _SEQUENCES_PER_YEAR + int(sequence)


def _check_dates(issue_date: date, due_date: date) -> None:
    if due_date < issue_date:
        raise ValidationFailed("dueDate", "must be on or after issueDate")


def _line_of(item: InvoiceItem) -> Line:
    return Line(item.description, item.quantity, item.unit_price, item.tax_rate)
