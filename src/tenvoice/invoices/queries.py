"""The read side of invoices: rows straight into wire models, never the aggregate."""

import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Select,
    and_,
    bindparam,
    false,
    inspect,
    not_,
    or_,
    select,
    type_coerce,
)
from sqlalchemy.ext.asyncio import AsyncConnection

from tenvoice.credits.models import CreditNote, CreditNoteStatus, Refund
from tenvoice.customers.models import Customer
from tenvoice.invoices.document import (
    CreditNoteEntry,
    DocumentLine,
    InvoiceDocument,
    RefundEntry,
)
from tenvoice.invoices.errors import InvoiceNotFound
from tenvoice.invoices.links import HostedInvoiceLink, HostedLinks
from tenvoice.invoices.models import Invoice, InvoiceItem
from tenvoice.invoices.schemas import InvoiceWire, LineWire, invoice_view, line_view
from tenvoice.platform.db import ReadSession, ScaledDecimal, WriteSession, utcnow
from tenvoice.platform.money import (
    CURRENCY_EXPONENTS,
    MAX_MINOR_UNITS,
    currency_exponent,
    format_minor,
    format_scaled,
)
from tenvoice.platform.pagination import PageRequest, Sort, SortColumn, paginate, sorts
from tenvoice.platform.sql import contains, one_of
from tenvoice.platform.tenancy import TenantReads, owned_by_tenant, tenant_reads
from tenvoice.platform.tokens import token_hash
from tenvoice.tenants.models import Tenant

SORTS = sorts(
    {
        "createdAt": SortColumn(Invoice.created_at, "datetime"),
        "dueDate": SortColumn(Invoice.due_date, "date"),
        "total": SortColumn(Invoice.total, "int"),
        # Numbers in issue order, not as text (number_sort_key).
        "number": SortColumn(Invoice.number_sort, "int", nullable=True),
    },
    Invoice.id,
)
DEFAULT_SORT = "-createdAt"

# Labelled with the attribute names, which Core reads would otherwise not use (`metadata_`
# is the column `metadata`).
_INVOICE_COLUMNS = [
    getattr(Invoice, attr.key).label(attr.key) for attr in inspect(Invoice).column_attrs
]
# Quantity, unit price and tax rate as the scaled integers they are stored as: the view
# formats them directly (format_scaled) instead of through a Decimal.
_SCALES = {
    column.key: column.type.scale
    for column in InvoiceItem.__table__.columns
    if isinstance(column.type, ScaledDecimal)
}


def _item_columns(prefix: str = "") -> list[Any]:
    return [
        (
            type_coerce(getattr(InvoiceItem, attr.key), BigInteger)
            if attr.key in _SCALES
            else getattr(InvoiceItem, attr.key)
        ).label(f"{prefix}{attr.key}")
        for attr in inspect(InvoiceItem).column_attrs
    ]


_LINES_OF_INVOICE = and_(
    InvoiceItem.tenant_id == Invoice.tenant_id, InvoiceItem.invoice_id == Invoice.id
)

# The hottest reads are built once and run past the ORM (TenantReads), so each names its
# tenant filter itself.
_TENANT_INVOICES = select(*_INVOICE_COLUMNS).where(owned_by_tenant(Invoice))
# One round trip: the invoice joined to its lines (an invoice has few lines, so repeating its
# columns on each costs less than a second query).
_ONE_INVOICE = (
    select(*_INVOICE_COLUMNS, *_item_columns("item_"))
    .outerjoin(InvoiceItem, _LINES_OF_INVOICE)
    .where(owned_by_tenant(Invoice), Invoice.id == bindparam("invoice_id"))
    .order_by(InvoiceItem.position)
)
_TENANT_LINES = select(*_item_columns()).where(owned_by_tenant(InvoiceItem))


def _stored_line(row: Any, currency: str, prefix: str = "") -> LineWire:
    """The wire form of a line read with `_item_columns(prefix)`."""
    line = row._mapping
    return {
        "id": str(line[prefix + "id"]),
        "description": line[prefix + "description"],
        "quantity": format_scaled(line[prefix + "quantity"], _SCALES["quantity"]),
        "unitPrice": format_scaled(
            line[prefix + "unit_price"], _SCALES["unit_price"], currency_exponent(currency)
        ),
        "taxRate": format_scaled(line[prefix + "tax_rate"], _SCALES["tax_rate"]),
        "subtotal": format_minor(line[prefix + "subtotal"], currency),
        "tax": format_minor(line[prefix + "tax"], currency),
        "total": format_minor(line[prefix + "total"], currency),
    }


@dataclass(frozen=True, slots=True)
class InvoiceFilters:
    statuses: tuple[str, ...] = ()
    customer_id: uuid.UUID | None = None
    currency: str | None = None
    overdue: bool | None = None
    issue_date_from: date | None = None
    issue_date_to: date | None = None
    due_date_from: date | None = None
    due_date_to: date | None = None
    min_total: Decimal | None = None
    max_total: Decimal | None = None
    search: str | None = None


async def get_invoice(
    session: ReadSession, invoice_id: uuid.UUID, links: HostedLinks | None
) -> InvoiceWire:
    reads = await tenant_reads(session)
    rows = (await reads.execute(_ONE_INVOICE, invoice_id=invoice_id)).all()
    if not rows:
        raise InvoiceNotFound(f"No invoice {invoice_id}.")
    currency = rows[0].currency
    lines = [_stored_line(row, currency, "item_") for row in rows if row.item_id is not None]
    return invoice_view(rows[0], lines, utcnow().date(), links)


async def invoice_document(session: ReadSession, invoice_id: uuid.UUID) -> InvoiceDocument:
    """What the PDF and the hosted page show: the invoice as the API returns it, with both
    parties' names, its issued credit notes and its refunds."""
    invoice = await get_invoice(session, invoice_id, links=None)
    parties = (
        await session.execute(
            select(Customer.name, Customer.email, Tenant.name.label("seller"))
            .join(Tenant, Tenant.id == Customer.tenant_id)
            .where(Customer.id == uuid.UUID(invoice["customerId"]))
        )
    ).one()
    currency = invoice["currency"]
    return InvoiceDocument(
        seller=parties.seller,
        number=invoice["number"],
        status=invoice["status"],
        currency=currency,
        issue_date=invoice["issueDate"].isoformat(),
        due_date=invoice["dueDate"].isoformat(),
        customer_name=parties.name,
        customer_email=parties.email,
        lines=[
            DocumentLine(
                item["description"],
                item["quantity"],
                item["unitPrice"],
                item["taxRate"],
                item["total"],
            )
            for item in invoice["items"]
        ],
        subtotal=invoice["subtotal"],
        tax=invoice["tax"],
        total=invoice["total"],
        amount_paid=invoice["amountPaid"],
        amount_due=invoice["amountDue"],
        memo=invoice["memo"],
        applied_balance=invoice["appliedBalance"],
        credited_amount=invoice["creditedAmount"],
        amount_refunded=invoice["amountRefunded"],
        credit_notes=await _issued_credit_notes(session, invoice_id, currency),
        refunds=await refund_entries(session, Refund.invoice_id == invoice_id),
    )


async def _issued_credit_notes(
    session: ReadSession, invoice_id: uuid.UUID, currency: str
) -> list[CreditNoteEntry]:
    # A void note changed nothing that is still owed, so the customer is not shown it.
    rows = await session.execute(
        select(CreditNote.number, CreditNote.created_at, CreditNote.total)
        .where(CreditNote.invoice_id == invoice_id, CreditNote.status == CreditNoteStatus.ISSUED)
        .order_by(CreditNote.created_at, CreditNote.id)
    )
    return [
        CreditNoteEntry(
            row.number, row.created_at.date().isoformat(), format_minor(row.total, currency)
        )
        for row in rows
    ]


async def refund_entries(session: ReadSession, which: ColumnElement[bool]) -> list[RefundEntry]:
    """The refunds `which` picks, oldest first, each dated by its latest change of status."""
    rows = await session.execute(
        select(
            Refund.amount,
            Refund.currency,
            Refund.status,
            Refund.created_at,
            Refund.succeeded_at,
            Refund.failed_at,
        )
        .where(which)
        .order_by(Refund.created_at, Refund.id)
    )
    return [
        RefundEntry(
            format_minor(row.amount, row.currency),
            row.status,
            (row.succeeded_at or row.failed_at or row.created_at).date().isoformat(),
        )
        for row in rows
    ]


async def find_hosted_link(
    connection: AsyncConnection, token: str
) -> tuple[uuid.UUID, uuid.UUID] | None:
    """(tenant, invoice) behind a public link's token, looked up by the token's hash."""
    row = (
        await connection.execute(
            select(HostedInvoiceLink.tenant_id, HostedInvoiceLink.invoice_id).where(
                HostedInvoiceLink.token_hash == token_hash(token)
            )
        )
    ).first()
    return None if row is None else (row.tenant_id, row.invoice_id)


async def require_invoice(session: ReadSession, invoice_id: uuid.UUID) -> None:
    if await session.scalar(select(Invoice.id).where(Invoice.id == invoice_id)) is None:
        raise InvoiceNotFound(f"No invoice {invoice_id}.")


async def list_invoices(
    session: ReadSession, filters: InvoiceFilters, sort: Sort, page: PageRequest, links: HostedLinks
) -> dict[str, Any]:
    """A page in its wire form (Page[InvoiceOut] documents it)."""
    today = utcnow().date()
    reads = await tenant_reads(session)
    result = await paginate(reads, _filtered(_TENANT_INVOICES, filters, today), sort, page)
    lines = await _lines(reads, result.rows)
    return {
        "data": [invoice_view(row, lines[row.id], today, links) for row in result.rows],
        "pagination": result.pagination.model_dump(by_alias=True),
    }


async def _lines(reads: TenantReads, invoices: list[Any]) -> dict[uuid.UUID, list[LineWire]]:
    """Every line of a page of invoices in one query (no query per invoice)."""
    by_invoice: dict[uuid.UUID, list[LineWire]] = defaultdict(list)
    if invoices:
        currencies = {row.id: row.currency for row in invoices}
        dialect = reads.connection.dialect.name
        rows = await reads.execute(
            _TENANT_LINES.where(one_of(dialect, InvoiceItem.invoice_id, list(currencies))).order_by(
                InvoiceItem.invoice_id, InvoiceItem.position
            )
        )
        for row in rows:
            by_invoice[row.invoice_id].append(_stored_line(row, currencies[row.invoice_id]))
    return by_invoice


def _filtered(statement: Select[Any], f: InvoiceFilters, today: date) -> Select[Any]:
    conditions: list[ColumnElement[bool]] = []
    if f.statuses:
        conditions.append(Invoice.status.in_(f.statuses))
    if f.customer_id is not None:
        conditions.append(Invoice.customer_id == f.customer_id)
    if f.currency is not None:
        conditions.append(Invoice.currency == f.currency)
    if f.overdue is not None:
        overdue = and_(Invoice.status == "open", Invoice.due_date < today)
        conditions.append(overdue if f.overdue else not_(overdue))
    for column, low, high in (
        (Invoice.issue_date, f.issue_date_from, f.issue_date_to),
        (Invoice.due_date, f.due_date_from, f.due_date_to),
    ):
        if low is not None:
            conditions.append(column >= low)
        if high is not None:
            conditions.append(column <= high)
    if f.min_total is not None:
        conditions.append(_total_bound(f.min_total, f.currency, at_least=True))
    if f.max_total is not None:
        conditions.append(_total_bound(f.max_total, f.currency, at_least=False))
    if f.search:
        statement = statement.join(
            Customer,
            and_(Customer.tenant_id == Invoice.tenant_id, Customer.id == Invoice.customer_id),
        )
        conditions.append(
            or_(contains(Invoice.number, f.search), contains(Customer.name, f.search))
        )
    return statement.where(*conditions)


def _total_bound(amount: Decimal, currency: str | None, *, at_least: bool) -> ColumnElement[bool]:
    """`total >= amount` (or <=) in each invoice's own currency.

    Totals are stored in minor units, and 10 means 10.00 USD but 10 JPY, so the bound is
    converted once per minor-unit exponent and applied to the currencies that share it.
    """
    groups: dict[int, list[str]] = defaultdict(list)
    for code, exponent in CURRENCY_EXPONENTS.items():
        if currency is None or code == currency:
            groups[exponent].append(code)
    clauses: list[ColumnElement[bool]] = []
    for exponent, codes in groups.items():
        scaled = amount.scaleb(exponent)
        # A bound finer than the minor unit: "at least 10.005 USD" is "at least 10.01".
        bound = int(
            scaled.to_integral_value(rounding="ROUND_CEILING" if at_least else "ROUND_FLOOR")
        )
        bound = max(-MAX_MINOR_UNITS * 10, min(bound, MAX_MINOR_UNITS * 10))
        compare = Invoice.total >= bound if at_least else Invoice.total <= bound
        in_group = Invoice.currency == codes[0] if len(codes) == 1 else Invoice.currency.in_(codes)
        clauses.append(compare if currency is not None else and_(in_group, compare))
    return or_(*clauses) if clauses else false()


async def invoice_snapshot(invoice: Any, session: WriteSession) -> InvoiceWire:
    """The aggregate as GET returns it, for the event log. Without its public link: the
    token is never stored, and readers of the log add it back (events/queries.py)."""
    if "items" in inspect(invoice).unloaded:
        # Commands that only move money (a payment settling) load no lines.
        await session.refresh(invoice, ["items"])
    lines = [line_view(item, invoice.currency) for item in invoice.items]
    return invoice_view(invoice, lines, utcnow().date(), None)
