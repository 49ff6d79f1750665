from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from fastapi.responses import HTMLResponse

from tenvoice.api import Paging, PublicLinks, TenantReader, TenantUow
from tenvoice.events import queries as timeline
from tenvoice.events.schemas import Timeline
from tenvoice.invoices import commands, hosted, pdf, queries
from tenvoice.invoices.document import InvoiceDocument
from tenvoice.invoices.errors import InvoiceNotFound
from tenvoice.invoices.links import HostedLinks
from tenvoice.invoices.models import Invoice, InvoiceStatus
from tenvoice.invoices.schemas import (
    InvoiceCreate,
    InvoiceItemIn,
    InvoiceOut,
    InvoicePatch,
    invoice_view,
    line_view,
)
from tenvoice.platform.db import Database, ReadSession, utcnow
from tenvoice.platform.errors import ValidationFailed
from tenvoice.platform.http import WireJSON
from tenvoice.platform.money import MoneyError, parse_decimal
from tenvoice.platform.pagination import Page, Sort
from tenvoice.platform.schemas import (
    Currency,
    IsoDate,
    choices,
    documented_choices,
    problem_responses,
)

router = APIRouter(
    prefix="/api/invoices",
    tags=["invoices"],
    responses=problem_responses(400, 401, 403, 404, 409, 413, 415, 422),
)


def _out(invoice: Invoice, links: HostedLinks, status_code: int = 200) -> WireJSON:
    lines = [line_view(item, invoice.currency) for item in invoice.items]
    return WireJSON(invoice_view(invoice, lines, utcnow().date(), links), status_code)


def _lines(items: list[InvoiceItemIn]) -> list[commands.LineInput]:
    return [
        commands.LineInput(item.description, item.quantity, item.unit_price, item.tax_rate)
        for item in items
    ]


def _amount(name: str, value: str | None) -> Decimal | None:
    if value is None:
        return None
    try:
        return parse_decimal(value, max_places=4, what=name)
    except MoneyError as exc:
        raise ValidationFailed(name, str(exc)) from None


# Read by _amount (its messages); the pattern documents what it takes.
_TOTAL_BOUND: dict[str, Any] = {
    "max_length": 40,
    "json_schema_extra": {"pattern": r"^-?\d{1,18}(?:\.\d{1,4})?$"},
}


async def invoice_filters(
    status: Annotated[
        list[Annotated[str, documented_choices(InvoiceStatus)]] | None, Query(max_length=200)
    ] = None,
    customer_id: Annotated[UUID | None, Query(alias="customerId")] = None,
    currency: Annotated[Currency | None, Query()] = None,
    overdue: Annotated[bool | None, Query()] = None,
    issue_date_from: Annotated[IsoDate | None, Query(alias="issueDateFrom")] = None,
    issue_date_to: Annotated[IsoDate | None, Query(alias="issueDateTo")] = None,
    due_date_from: Annotated[IsoDate | None, Query(alias="dueDateFrom")] = None,
    due_date_to: Annotated[IsoDate | None, Query(alias="dueDateTo")] = None,
    min_total: Annotated[str | None, Query(alias="minTotal", **_TOTAL_BOUND)] = None,
    max_total: Annotated[str | None, Query(alias="maxTotal", **_TOTAL_BOUND)] = None,
    search: Annotated[str | None, Query(min_length=1, max_length=200)] = None,
) -> queries.InvoiceFilters:
    low, high = _amount("minTotal", min_total), _amount("maxTotal", max_total)
    return queries.InvoiceFilters(
        statuses=choices("status", status or [], InvoiceStatus),
        customer_id=customer_id,
        currency=currency,
        overdue=overdue,
        issue_date_from=issue_date_from,
        issue_date_to=issue_date_to,
        due_date_from=due_date_from,
        due_date_to=due_date_to,
        min_total=low,
        max_total=high,
        search=search,
    )


async def invoice_sort(sort: Annotated[str, Query()] = queries.DEFAULT_SORT) -> Sort:
    try:
        return queries.SORTS[sort]
    except KeyError:
        allowed = ", ".join(queries.SORTS)
        raise ValidationFailed("sort", f"must be one of {allowed}") from None


@router.post("", status_code=201, response_model=InvoiceOut)
async def create_invoice(body: InvoiceCreate, uow: TenantUow, links: PublicLinks) -> WireJSON:
    command = commands.CreateInvoice(
        customer_id=body.customer_id,
        currency=body.currency,
        issue_date=body.issue_date,
        due_date=body.due_date,
        items=_lines(body.items),
        memo=body.memo,
        metadata=body.metadata,
        finalize=body.finalize,
        links=links.tokens,
    )
    return _out(await uow.run(commands.create_invoice, command), links, 201)


@router.get("", response_model=Page[InvoiceOut])
async def list_invoices(
    session: TenantReader,
    page: Paging,
    filters: Annotated[queries.InvoiceFilters, Depends(invoice_filters)],
    sort: Annotated[Sort, Depends(invoice_sort)],
    links: PublicLinks,
) -> WireJSON:
    return WireJSON(await queries.list_invoices(session, filters, sort, page, links))


@router.get("/{invoice_id}", response_model=InvoiceOut)
async def get_invoice(invoice_id: UUID, session: TenantReader, links: PublicLinks) -> WireJSON:
    return WireJSON(await queries.get_invoice(session, invoice_id, links))


@router.patch("/{invoice_id}", response_model=InvoiceOut)
async def revise_invoice(
    invoice_id: UUID, body: InvoicePatch, uow: TenantUow, links: PublicLinks
) -> WireJSON:
    fields = body.model_dump(exclude_unset=True, exclude={"items"})
    if "metadata" in fields:
        fields["metadata_"] = fields.pop("metadata")
    items = _lines(body.items) if body.items is not None else None
    command = commands.ReviseInvoice(invoice_id, fields, items)
    return _out(await uow.run(commands.revise_invoice, command), links)


@router.delete("/{invoice_id}", status_code=204)
async def delete_invoice(invoice_id: UUID, uow: TenantUow) -> Response:
    await uow.run(commands.delete_invoice, commands.InvoiceAction(invoice_id))
    return Response(status_code=204)


@router.post("/{invoice_id}/finalize", response_model=InvoiceOut)
async def finalize_invoice(invoice_id: UUID, uow: TenantUow, links: PublicLinks) -> WireJSON:
    command = commands.FinalizeInvoice(invoice_id, links.tokens)
    return _out(await uow.run(commands.finalize_invoice, command), links)


@router.post("/{invoice_id}/send", response_model=InvoiceOut)
async def send_invoice(invoice_id: UUID, uow: TenantUow, links: PublicLinks) -> WireJSON:
    return _out(await uow.run(commands.send_invoice, commands.InvoiceAction(invoice_id)), links)


@router.post("/{invoice_id}/void", response_model=InvoiceOut)
async def void_invoice(invoice_id: UUID, uow: TenantUow, links: PublicLinks) -> WireJSON:
    return _out(await uow.run(commands.void_invoice, commands.InvoiceAction(invoice_id)), links)


@router.post("/{invoice_id}/mark-uncollectible", response_model=InvoiceOut)
async def mark_invoice_uncollectible(
    invoice_id: UUID, uow: TenantUow, links: PublicLinks
) -> WireJSON:
    command = commands.InvoiceAction(invoice_id)
    return _out(await uow.run(commands.mark_invoice_uncollectible, command), links)


@router.get("/{invoice_id}/timeline")
async def invoice_timeline(invoice_id: UUID, session: TenantReader, links: PublicLinks) -> Timeline:
    await queries.require_invoice(session, invoice_id)
    return await timeline.stream(session, invoice_id, links)


@router.get(
    "/{invoice_id}/pdf",
    response_class=Response,
    responses={200: {"content": {"application/pdf": {}}, "description": "The invoice as a PDF"}},
)
async def invoice_pdf(invoice_id: UUID, session: TenantReader) -> Response:
    document = await queries.invoice_document(session, invoice_id)
    return _pdf(document, document.number or f"draft-{invoice_id}")


def _pdf(document: InvoiceDocument, name: str, headers: dict[str, str] | None = None) -> Response:
    return Response(
        pdf.render(document),
        media_type="application/pdf",
        headers={**(headers or {}), "Content-Disposition": f'inline; filename="{name}.pdf"'},
    )


public_router = APIRouter(
    prefix="/hosted/invoices", tags=["hosted invoices"], responses=problem_responses(404, 422)
)


async def _linked_invoice(
    request: Request, token: Annotated[str, Path(max_length=100)]
) -> AsyncIterator[tuple[ReadSession, UUID]]:
    """The invoice behind a public link, read as its own tenant (all tenancy layers hold)."""
    db: Database = request.app.state.db
    async with db.lookup() as connection:
        link = await queries.find_hosted_link(connection, token)
    if link is None:
        raise InvoiceNotFound("No invoice behind this link.")
    tenant_id, invoice_id = link
    async with db.read(tenant_id) as session:
        yield session, invoice_id


LinkedInvoice = Annotated[tuple[ReadSession, UUID], Depends(_linked_invoice)]


@public_router.get("/{token}", response_class=HTMLResponse)
async def hosted_invoice_page(token: str, linked: LinkedInvoice) -> HTMLResponse:
    document = await queries.invoice_document(*linked)
    page = hosted.render_page(document, pdf_href=f"{token}/pdf")
    return HTMLResponse(page, headers=hosted.HEADERS)


@public_router.get(
    "/{token}/pdf",
    response_class=Response,
    responses={200: {"content": {"application/pdf": {}}, "description": "The invoice as a PDF"}},
)
async def hosted_invoice_pdf(linked: LinkedInvoice) -> Response:
    document = await queries.invoice_document(*linked)
    return _pdf(document, document.number or "invoice", hosted.HEADERS)
