"""The read side of payments: rows straight into wire models."""

import uuid
from dataclasses import dataclass

from sqlalchemy import inspect, select
from sqlalchemy.ext.asyncio import AsyncConnection

from tenvoice.payments.errors import PaymentNotFound
from tenvoice.payments.models import Payment, PaymentRoute
from tenvoice.payments.schemas import PaymentOut, payment_view
from tenvoice.platform.db import ReadSession
from tenvoice.platform.pagination import Page, PageRequest, SortColumn, paginate, sorts

_COLUMNS = [getattr(Payment, attr.key) for attr in inspect(Payment).column_attrs]
NEWEST_FIRST = sorts({"attemptedAt": SortColumn(Payment.attempted_at, "datetime")}, Payment.id)[
    "-attemptedAt"
]


@dataclass(frozen=True, slots=True)
class PaymentFilters:
    invoice_id: uuid.UUID | None = None
    statuses: tuple[str, ...] = ()


async def get_payment(session: ReadSession, payment_id: uuid.UUID) -> PaymentOut:
    row = (await session.execute(select(*_COLUMNS).where(Payment.id == payment_id))).first()
    if row is None:
        raise PaymentNotFound(f"No payment {payment_id}.")
    return payment_view(row)


async def list_payments(
    session: ReadSession, filters: PaymentFilters, page: PageRequest
) -> Page[PaymentOut]:
    statement = select(*_COLUMNS)
    if filters.invoice_id is not None:
        statement = statement.where(Payment.invoice_id == filters.invoice_id)
    if filters.statuses:
        statement = statement.where(Payment.status.in_(filters.statuses))
    result = await paginate(session, statement, NEWEST_FIRST, page)
    return Page(data=[payment_view(row) for row in result.rows], pagination=result.pagination)


async def payment_tenant(connection: AsyncConnection, payment_id: uuid.UUID) -> uuid.UUID | None:
    """The tenant a payment belongs to, before any tenant is in scope (the gateway's webhook)."""
    tenant: uuid.UUID | None = await connection.scalar(
        select(PaymentRoute.tenant_id).where(PaymentRoute.payment_id == payment_id)
    )
    return tenant
