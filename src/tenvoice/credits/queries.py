"""The read side of credit notes, refunds and balances: rows straight into wire models."""

import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import inspect, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from tenvoice.credits.errors import CreditNoteNotFound, RefundNotFound
from tenvoice.credits.models import (
    BalanceTransaction,
    CreditNote,
    CreditNoteLine,
    CustomerBalance,
    Refund,
    RefundRoute,
)
from tenvoice.credits.schemas import (
    BalanceTransactionOut,
    CreditNoteOut,
    RefundOut,
    balance_transaction_view,
    credit_note_view,
    note_view,
    refund_view,
)
from tenvoice.platform.db import ReadSession, WriteSession
from tenvoice.platform.pagination import Page, PageRequest, SortColumn, paginate, sorts


def _columns(model: Any) -> list[Any]:
    return [getattr(model, attr.key).label(attr.key) for attr in inspect(model).column_attrs]


_NOTE_COLUMNS = _columns(CreditNote)
_REFUND_COLUMNS = _columns(Refund)
_ENTRY_COLUMNS = _columns(BalanceTransaction)
_LINE_COLUMNS = _columns(CreditNoteLine)
NOTES_NEWEST_FIRST = sorts(
    {"createdAt": SortColumn(CreditNote.created_at, "datetime")}, CreditNote.id
)["-createdAt"]
REFUNDS_NEWEST_FIRST = sorts({"createdAt": SortColumn(Refund.created_at, "datetime")}, Refund.id)[
    "-createdAt"
]
ENTRIES_NEWEST_FIRST = sorts(
    {"createdAt": SortColumn(BalanceTransaction.created_at, "datetime")}, BalanceTransaction.id
)["-createdAt"]


@dataclass(frozen=True, slots=True)
class CreditNoteFilters:
    invoice_id: uuid.UUID | None = None
    customer_id: uuid.UUID | None = None
    statuses: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class RefundFilters:
    payment_id: uuid.UUID | None = None
    invoice_id: uuid.UUID | None = None
    statuses: tuple[str, ...] = ()


async def _notes_out(session: AsyncSession, notes: Sequence[Any]) -> list[CreditNoteOut]:
    """The notes with their lines and refunds: two queries for the whole page."""
    ids = [note.id for note in notes]
    if not ids:
        return []
    lines: dict[uuid.UUID, list[Any]] = defaultdict(list)
    for line in await session.execute(
        select(*_LINE_COLUMNS)
        .where(CreditNoteLine.credit_note_id.in_(ids))
        .order_by(CreditNoteLine.credit_note_id, CreditNoteLine.position)
    ):
        lines[line.credit_note_id].append(line)
    refunds: dict[uuid.UUID | None, list[uuid.UUID]] = defaultdict(list)
    for note_id, refund_id in await session.execute(
        select(Refund.credit_note_id, Refund.id)
        .where(Refund.credit_note_id.in_(ids))
        .order_by(Refund.created_at, Refund.id)
    ):
        refunds[note_id].append(refund_id)
    return [credit_note_view(note, lines[note.id], refunds[note.id]) for note in notes]


async def credit_note_snapshot(note: CreditNote, _session: WriteSession) -> dict[str, Any]:
    return note_view(note).model_dump(mode="json", by_alias=True)


async def get_credit_note(session: ReadSession, credit_note_id: uuid.UUID) -> CreditNoteOut:
    row = (
        await session.execute(select(*_NOTE_COLUMNS).where(CreditNote.id == credit_note_id))
    ).first()
    if row is None:
        raise CreditNoteNotFound(f"No credit note {credit_note_id}.")
    [out] = await _notes_out(session, [row])
    return out


async def list_credit_notes(
    session: ReadSession, filters: CreditNoteFilters, page: PageRequest
) -> Page[CreditNoteOut]:
    statement = select(*_NOTE_COLUMNS)
    if filters.invoice_id is not None:
        statement = statement.where(CreditNote.invoice_id == filters.invoice_id)
    if filters.customer_id is not None:
        statement = statement.where(CreditNote.customer_id == filters.customer_id)
    if filters.statuses:
        statement = statement.where(CreditNote.status.in_(filters.statuses))
    result = await paginate(session, statement, NOTES_NEWEST_FIRST, page)
    return Page(data=await _notes_out(session, result.rows), pagination=result.pagination)


async def get_refund(session: ReadSession, refund_id: uuid.UUID) -> RefundOut:
    row = (await session.execute(select(*_REFUND_COLUMNS).where(Refund.id == refund_id))).first()
    if row is None:
        raise RefundNotFound(f"No refund {refund_id}.")
    return refund_view(row)


async def list_refunds(
    session: ReadSession, filters: RefundFilters, page: PageRequest
) -> Page[RefundOut]:
    statement = select(*_REFUND_COLUMNS)
    if filters.payment_id is not None:
        statement = statement.where(Refund.payment_id == filters.payment_id)
    if filters.invoice_id is not None:
        statement = statement.where(Refund.invoice_id == filters.invoice_id)
    if filters.statuses:
        statement = statement.where(Refund.status.in_(filters.statuses))
    result = await paginate(session, statement, REFUNDS_NEWEST_FIRST, page)
    return Page(data=[refund_view(row) for row in result.rows], pagination=result.pagination)


async def refund_snapshot(refund: Refund, _session: WriteSession) -> dict[str, Any]:
    return refund_view(refund).model_dump(mode="json", by_alias=True)


async def list_balance_transactions(
    session: ReadSession, customer_id: uuid.UUID, page: PageRequest
) -> Page[BalanceTransactionOut]:
    statement = select(*_ENTRY_COLUMNS).where(BalanceTransaction.customer_id == customer_id)
    result = await paginate(session, statement, ENTRIES_NEWEST_FIRST, page)
    return Page(
        data=[balance_transaction_view(row) for row in result.rows], pagination=result.pagination
    )


async def balances_of(
    session: AsyncSession, customer_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, dict[str, int]]:
    """Each customer's credit by currency (only currencies it has ever had credit in)."""
    found: dict[uuid.UUID, dict[str, int]] = defaultdict(dict)
    if customer_ids:
        for customer_id, currency, amount in await session.execute(
            select(
                CustomerBalance.customer_id, CustomerBalance.currency, CustomerBalance.amount
            ).where(CustomerBalance.customer_id.in_(customer_ids))
        ):
            found[customer_id][currency] = amount
    return found


async def refund_tenant(connection: AsyncConnection, refund_id: uuid.UUID) -> uuid.UUID | None:
    """The tenant a refund belongs to, before any tenant is in scope (the gateway's webhook)."""
    tenant: uuid.UUID | None = await connection.scalar(
        select(RefundRoute.tenant_id).where(RefundRoute.refund_id == refund_id)
    )
    return tenant
