"""Documents for people: what the PDFs and the hosted page show.

Each document (an invoice here, a credit note in credits/document.py) is plain data that
lays itself out as a `Layout`: a title, header rows, one table, labelled totals and further
sections. The renderers know only the layout, so every document looks the same and the
renderer can be replaced without touching what the documents say.
"""

from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Table:
    heading: str | None
    columns: tuple[str, ...]
    rows: Sequence[tuple[str, ...]]


@dataclass(frozen=True, slots=True)
class Total:
    label: str
    amount: str
    strong: bool = False


@dataclass(frozen=True, slots=True)
class Layout:
    title: str
    status: str
    header: list[tuple[str, str]]
    table: Table
    totals: list[Total]
    sections: list[Table] = field(default_factory=list)
    note: str | None = None


class Printable(Protocol):
    def layout(self) -> Layout: ...


LINE_COLUMNS = ("Description", "Qty", "Unit price", "Tax %", "Total")


@dataclass(frozen=True, slots=True)
class DocumentLine:
    description: str
    quantity: str
    unit_price: str
    tax_rate: str
    total: str

    def cells(self) -> tuple[str, ...]:
        return (self.description, self.quantity, self.unit_price, self.tax_rate, self.total)


@dataclass(frozen=True, slots=True)
class CreditNoteEntry:
    number: str
    issue_date: str
    total: str


@dataclass(frozen=True, slots=True)
class RefundEntry:
    amount: str
    status: str
    date: str


def nonzero(amount: str) -> bool:
    return Decimal(amount) != 0


def refund_section(refunds: list[RefundEntry], currency: str) -> list[Table]:
    """The refunds as a section, or none: an empty heading would only raise questions."""
    if not refunds:
        return []
    rows = [(f"{r.amount} {currency}", r.status, r.date) for r in refunds]
    return [Table("Refunds", ("Amount", "Status", "Date"), rows)]


@dataclass(frozen=True, slots=True)
class InvoiceDocument:
    seller: str
    number: str | None
    status: str
    currency: str
    issue_date: str
    due_date: str
    customer_name: str
    customer_email: str
    lines: list[DocumentLine]
    subtotal: str
    tax: str
    total: str
    amount_paid: str
    amount_due: str
    memo: str | None
    applied_balance: str = "0"
    credited_amount: str = "0"
    amount_refunded: str = "0"
    credit_notes: list[CreditNoteEntry] = field(default_factory=list)
    refunds: list[RefundEntry] = field(default_factory=list)

    def totals(self) -> list[Total]:
        """Top down as amountDue is worked out (refunds beside the payments they give back);
        the corrections only when there are any, so a plain invoice reads as it always did."""
        rows = [
            ("Subtotal", self.subtotal, True),
            ("Tax", self.tax, True),
            ("Total", self.total, True),
            ("Applied balance", self.applied_balance, nonzero(self.applied_balance)),
            ("Credited", self.credited_amount, nonzero(self.credited_amount)),
            ("Paid", self.amount_paid, True),
            ("Refunded", self.amount_refunded, nonzero(self.amount_refunded)),
            ("Amount due", self.amount_due, True),
        ]
        return [
            Total(label, f"{amount} {self.currency}", label in ("Total", "Amount due"))
            for label, amount, shown in rows
            if shown
        ]

    def sections(self) -> list[Table]:
        notes = [
            Table(
                "Credit notes",
                ("Number", "Date", "Total"),
                [(n.number, n.issue_date, f"{n.total} {self.currency}") for n in self.credit_notes],
            )
        ]
        return (notes if self.credit_notes else []) + refund_section(self.refunds, self.currency)

    def layout(self) -> Layout:
        return Layout(
            title=f"Invoice {self.number}" if self.number else "Draft invoice",
            status=self.status,
            header=[
                (f"From: {self.seller}", f"Issued: {self.issue_date}"),
                (f"Bill to: {self.customer_name}", f"Due: {self.due_date}"),
                (self.customer_email, f"Currency: {self.currency}"),
            ],
            table=Table(None, LINE_COLUMNS, [line.cells() for line in self.lines]),
            totals=self.totals(),
            sections=self.sections(),
            note=self.memo,
        )
