from datetime import date, datetime
from typing import Annotated, Any
from uuid import UUID

from pydantic import Field, StrictBool, ValidationInfo, field_validator

from tenvoice.invoices.amounts import amount_due
from tenvoice.invoices.links import HostedLinks
from tenvoice.platform.money import currency_exponent, format_decimal, format_minor
from tenvoice.platform.schemas import (
    NOT_BLANK,
    Currency,
    InputModel,
    IsoDate,
    Metadata,
    OutputModel,
    Quantity,
    TaxRate,
    UnitPrice,
)

Memo = Annotated[str, Field(max_length=5000)]


class InvoiceItemIn(InputModel):
    description: Annotated[str, Field(min_length=1, max_length=500, pattern=NOT_BLANK)]
    quantity: Quantity
    unit_price: UnitPrice
    tax_rate: TaxRate | None = None


Items = Annotated[list[InvoiceItemIn], Field(min_length=1, max_length=500)]


class InvoiceCreate(InputModel):
    customer_id: UUID
    currency: Currency | None = None
    issue_date: IsoDate | None = None
    due_date: IsoDate | None = None
    items: Items
    memo: Memo | None = None
    metadata: Metadata = Field(default_factory=dict)
    finalize: StrictBool = False

    @field_validator("due_date")
    @classmethod
    def _dates_in_order(cls, due: date | None, info: ValidationInfo) -> date | None:
        # A field validator, not a model one, so the 422 names `dueDate` (as PATCH does)
        # rather than the whole body. issue_date is declared first, so it is in `info.data`.
        issued = info.data.get("issue_date")
        if issued is not None and due is not None and due < issued:
            raise ValueError("must be on or after issueDate")
        return due


class InvoicePatch(InputModel):
    # Null clears memo and metadata (as Stripe's empty value does); the others have no
    # empty value.
    not_null = frozenset({"customer_id", "currency", "issue_date", "due_date", "items"})

    customer_id: UUID | None = None
    currency: Currency | None = None
    issue_date: IsoDate | None = None
    due_date: IsoDate | None = None
    items: Items | None = None
    memo: Memo | None = None
    metadata: Metadata | None = None

    @field_validator("metadata")
    @classmethod
    def _null_clears(cls, value: dict[str, str] | None) -> dict[str, str]:
        return {} if value is None else value


class InvoiceItemOut(OutputModel):
    id: UUID
    description: str
    quantity: str
    unit_price: str
    tax_rate: str
    subtotal: str
    tax: str
    total: str


class InvoiceOut(OutputModel):
    id: UUID
    number: str | None
    customer_id: UUID
    currency: str
    status: str
    issue_date: date
    due_date: date
    items: list[InvoiceItemOut]
    subtotal: str
    tax: str
    total: str
    amount_paid: str
    amount_due: str
    applied_balance: str
    credited_amount: str
    amount_refunded: str
    paid_out_of_band: bool
    overdue: bool
    memo: str | None
    metadata: dict[str, str]
    created_at: datetime
    updated_at: datetime
    finalized_at: datetime | None
    sent_at: datetime | None
    paid_at: datetime | None
    voided_at: datetime | None
    marked_uncollectible_at: datetime | None
    hosted_url: str | None


# An invoice and one of its lines in their wire form: InvoiceOut's and InvoiceItemOut's
# fields under their camelCase names.
InvoiceWire = dict[str, Any]
LineWire = dict[str, Any]


def line_view(item: Any, currency: str) -> LineWire:
    """The wire form of a line of the aggregate (its amounts are exact Decimals)."""
    return {
        "id": str(item.id),
        "description": item.description,
        "quantity": format_decimal(item.quantity),
        "unitPrice": format_decimal(item.unit_price, currency_exponent(currency)),
        "taxRate": format_decimal(item.tax_rate),
        "subtotal": format_minor(item.subtotal, currency),
        "tax": format_minor(item.tax, currency),
        "total": format_minor(item.total, currency),
    }


def invoice_view(
    invoice: Any, lines: list[LineWire], today: date, links: HostedLinks | None
) -> InvoiceWire:
    """The wire form of an invoice from anything with its column attributes: the aggregate
    after a command, or a row a query selected. Without `links`, hostedUrl is left out (null).

    Plain dicts, not InvoiceOut: a list page builds 200 of these, and model construction cost
    more than the query (tests check the result against InvoiceOut). Ids are given as text:
    asyncpg's UUIDs would otherwise each take orjson's slow path."""
    currency: str = invoice.currency
    return {
        "id": str(invoice.id),
        "number": invoice.number,
        "customerId": str(invoice.customer_id),
        "currency": currency,
        "status": invoice.status,
        "issueDate": invoice.issue_date,
        "dueDate": invoice.due_date,
        "items": lines,
        "subtotal": format_minor(invoice.subtotal, currency),
        "tax": format_minor(invoice.tax, currency),
        "total": format_minor(invoice.total, currency),
        "amountPaid": format_minor(invoice.amount_paid, currency),
        "amountDue": format_minor(amount_due(invoice), currency),
        "appliedBalance": format_minor(invoice.applied_balance, currency),
        "creditedAmount": format_minor(invoice.credited_amount, currency),
        "amountRefunded": format_minor(invoice.amount_refunded, currency),
        "paidOutOfBand": invoice.paid_out_of_band,
        "overdue": invoice.status == "open" and invoice.due_date < today,
        "memo": invoice.memo,
        "metadata": invoice.metadata_,
        "createdAt": invoice.created_at,
        "updatedAt": invoice.updated_at,
        "finalizedAt": invoice.finalized_at,
        "sentAt": invoice.sent_at,
        "paidAt": invoice.paid_at,
        "voidedAt": invoice.voided_at,
        "markedUncollectibleAt": invoice.marked_uncollectible_at,
        # Every finalized invoice has its link (written at finalize, or by migration 0005).
        "hostedUrl": (
            links.url(invoice.tenant_id, invoice.id)
            if links is not None and invoice.finalized_at is not None
            else None
        ),
    }
