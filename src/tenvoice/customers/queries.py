import uuid
from typing import Any

from sqlalchemy import Select, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from tenvoice.credits.queries import balances_of
from tenvoice.customers.errors import CustomerNotFound
from tenvoice.customers.models import Customer
from tenvoice.customers.schemas import CustomerOut, customer_out
from tenvoice.platform.db import ReadSession
from tenvoice.platform.pagination import Page, PageRequest, SortColumn, paginate, sorts
from tenvoice.platform.sql import contains

_SORT = sorts({"createdAt": SortColumn(Customer.created_at, "datetime")}, Customer.id)["-createdAt"]
_COLUMNS = (
    Customer.id,
    Customer.name,
    Customer.email,
    Customer.phone,
    Customer.address,
    Customer.metadata_.label("metadata_"),
    Customer.created_at,
    Customer.updated_at,
)


def _live() -> Select[tuple[object, ...]]:
    return select(*_COLUMNS).where(Customer.deleted_at.is_(None))


async def require_customer(session: ReadSession, customer_id: uuid.UUID) -> None:
    """404 unless the customer exists and is not deleted: for routes that read what belongs to
    it (its timeline, its ledger) and need nothing of the customer itself."""
    found = await session.scalar(
        select(Customer.id).where(Customer.id == customer_id, Customer.deleted_at.is_(None))
    )
    if found is None:
        raise CustomerNotFound(f"No customer {customer_id}.")


async def customer_snapshot(customer: Any, session: AsyncSession) -> dict[str, Any]:
    # The session does not autoflush: a balance just changed is written first to be read.
    await session.flush()
    balances = await balances_of(session, [customer.id])
    return customer_out(customer, balances.get(customer.id)).model_dump(mode="json", by_alias=True)


async def get_customer(session: ReadSession, customer_id: uuid.UUID) -> CustomerOut:
    row = (await session.execute(_live().where(Customer.id == customer_id))).first()
    if row is None:
        raise CustomerNotFound(f"No customer {customer_id}.")
    balances = await balances_of(session, [customer_id])
    return customer_out(row, balances.get(customer_id))


async def list_customers(
    session: ReadSession, page: PageRequest, search: str | None
) -> Page[CustomerOut]:
    statement = _live()
    if search:
        statement = statement.where(
            or_(contains(Customer.name, search), contains(Customer.email, search))
        )
    result = await paginate(session, statement, _SORT, page)
    balances = await balances_of(session, [row.id for row in result.rows])
    return Page(
        data=[customer_out(row, balances.get(row.id)) for row in result.rows],
        pagination=result.pagination,
    )
