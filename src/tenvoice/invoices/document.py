"""An invoice as a document for people: what the PDF and the hosted page show."""

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class DocumentLine:
    description: str
    quantity: str
    unit_price: str
    tax_rate: str
    total: str


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
