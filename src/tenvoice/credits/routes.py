from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Response

from tenvoice.api import Paging, TenantReader, TenantUow
from tenvoice.credits import commands, document, queries, refunds
from tenvoice.credits.models import CreditNoteStatus, RefundStatus
from tenvoice.credits.schemas import (
    BalanceTransactionCreate,
    BalanceTransactionOut,
    CreditNoteCreate,
    CreditNoteOut,
    RefundCreate,
    RefundOut,
    balance_transaction_view,
    note_view,
    refund_view,
)
from tenvoice.customers import queries as customer_queries
from tenvoice.platform.pagination import Page
from tenvoice.platform.schemas import choices, documented_choices, problem_responses

_PROBLEMS = problem_responses(400, 401, 403, 404, 409, 413, 415, 422)
# Credit note ids match only as UUIDs, so /api/credit-notes/preview is never taken for one
# (GET on it is then 405, and its Allow header names POST alone).
credit_notes = APIRouter(prefix="/api/credit-notes", tags=["credit notes"], responses=_PROBLEMS)
refunds_router = APIRouter(prefix="/api/refunds", tags=["refunds"], responses=_PROBLEMS)
balances = APIRouter(prefix="/api/customers", tags=["customers"], responses=_PROBLEMS)


def _issue_command(body: CreditNoteCreate, *, preview: bool) -> commands.IssueCreditNote:
    return commands.IssueCreditNote(
        invoice_id=body.invoice_id,
        lines=[
            commands.LineInput(
                line.invoice_item_id, line.quantity, line.amount, line.description, line.tax_rate
            )
            for line in body.lines
        ],
        reason=body.reason.value if body.reason else None,
        memo=body.memo,
        metadata=body.metadata,
        refund_amount=body.refund_amount,
        credit_amount=body.credit_amount,
        out_of_band_amount=body.out_of_band_amount,
        preview=preview,
    )


@credit_notes.post("", status_code=201)
async def issue_credit_note(body: CreditNoteCreate, uow: TenantUow) -> CreditNoteOut:
    return note_view(await uow.run(commands.issue_credit_note, _issue_command(body, preview=False)))


@credit_notes.post("/preview")
async def preview_credit_note(body: CreditNoteCreate, uow: TenantUow) -> CreditNoteOut:
    """The credit note the same body would issue now; nothing is stored."""
    return note_view(await uow.run(commands.issue_credit_note, _issue_command(body, preview=True)))


async def credit_note_filters(
    invoice_id: Annotated[UUID | None, Query(alias="invoiceId")] = None,
    customer_id: Annotated[UUID | None, Query(alias="customerId")] = None,
    status: Annotated[
        list[Annotated[str, documented_choices(CreditNoteStatus)]] | None, Query(max_length=10)
    ] = None,
) -> queries.CreditNoteFilters:
    return queries.CreditNoteFilters(
        invoice_id, customer_id, choices("status", status or [], CreditNoteStatus)
    )


@credit_notes.get("")
async def list_credit_notes(
    session: TenantReader,
    page: Paging,
    filters: Annotated[queries.CreditNoteFilters, Depends(credit_note_filters)],
) -> Page[CreditNoteOut]:
    return await queries.list_credit_notes(session, filters, page)


@credit_notes.get("/{credit_note_id:uuid}")
async def get_credit_note(credit_note_id: UUID, session: TenantReader) -> CreditNoteOut:
    return await queries.get_credit_note(session, credit_note_id)


@credit_notes.post("/{credit_note_id:uuid}/void")
async def void_credit_note(credit_note_id: UUID, uow: TenantUow) -> CreditNoteOut:
    return note_view(
        await uow.run(commands.void_credit_note, commands.VoidCreditNote(credit_note_id))
    )


@credit_notes.get(
    "/{credit_note_id:uuid}/pdf",
    response_class=Response,
    responses={200: {"content": {"application/pdf": {}}, "description": "The credit note"}},
)
async def credit_note_pdf(credit_note_id: UUID, session: TenantReader) -> Response:
    rendered, name = await document.credit_note_pdf(session, credit_note_id)
    return Response(
        rendered,
        media_type="application/pdf",
        headers={"Content-Disposition": f'inline; filename="{name}.pdf"'},
    )


@refunds_router.post("", status_code=201)
async def create_refund(body: RefundCreate, uow: TenantUow) -> RefundOut:
    command = refunds.CreateRefund(
        body.payment_id, body.amount, body.reason.value if body.reason else None
    )
    return refund_view(await uow.run(refunds.create_refund, command))


async def refund_filters(
    payment_id: Annotated[UUID | None, Query(alias="paymentId")] = None,
    invoice_id: Annotated[UUID | None, Query(alias="invoiceId")] = None,
    status: Annotated[
        list[Annotated[str, documented_choices(RefundStatus)]] | None, Query(max_length=10)
    ] = None,
) -> queries.RefundFilters:
    return queries.RefundFilters(
        payment_id, invoice_id, choices("status", status or [], RefundStatus)
    )


@refunds_router.get("")
async def list_refunds(
    session: TenantReader,
    page: Paging,
    filters: Annotated[queries.RefundFilters, Depends(refund_filters)],
) -> Page[RefundOut]:
    return await queries.list_refunds(session, filters, page)


@refunds_router.get("/{refund_id}")
async def get_refund(refund_id: UUID, session: TenantReader) -> RefundOut:
    return await queries.get_refund(session, refund_id)


@balances.get("/{customer_id}/balance-transactions")
async def list_balance_transactions(
    customer_id: UUID, session: TenantReader, page: Paging
) -> Page[BalanceTransactionOut]:
    """The customer's balance ledger, newest first: each entry with the balance after it."""
    await customer_queries.require_customer(session, customer_id)
    return await queries.list_balance_transactions(session, customer_id, page)


@balances.post("/{customer_id}/balance-transactions", status_code=201)
async def adjust_balance(
    customer_id: UUID, body: BalanceTransactionCreate, uow: TenantUow
) -> BalanceTransactionOut:
    command = commands.AdjustBalance(customer_id, body.currency, body.amount, body.description)
    return balance_transaction_view(await uow.run(commands.adjust_balance, command))
