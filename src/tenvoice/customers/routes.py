from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query, Response

from tenvoice.api import Paging, PublicLinks, TenantReader, TenantUow
from tenvoice.credits.queries import balances_of
from tenvoice.customers import commands, queries
from tenvoice.customers.schemas import (
    CustomerCreate,
    CustomerOut,
    CustomerPatch,
    address_value,
    customer_out,
)
from tenvoice.events import queries as timeline
from tenvoice.events.schemas import Timeline
from tenvoice.platform.pagination import Page
from tenvoice.platform.schemas import problem_responses
from tenvoice.platform.uow import UnitOfWork

router = APIRouter(
    prefix="/api/customers",
    tags=["customers"],
    responses=problem_responses(400, 401, 403, 404, 409, 413, 415, 422),
)


@router.post("", status_code=201)
async def create_customer(body: CustomerCreate, uow: TenantUow) -> CustomerOut:
    command = commands.CreateCustomer(
        name=body.name,
        email=body.email,
        phone=body.phone,
        address=address_value(body.address),
        metadata=body.metadata,
    )
    return customer_out(await uow.run(commands.create_customer, command))


@router.get("")
async def list_customers(
    session: TenantReader,
    page: Paging,
    search: Annotated[str | None, Query(min_length=1, max_length=200)] = None,
) -> Page[CustomerOut]:
    return await queries.list_customers(session, page, search)


@router.get("/{customer_id}")
async def get_customer(customer_id: UUID, session: TenantReader) -> CustomerOut:
    return await queries.get_customer(session, customer_id)


@router.patch("/{customer_id}")
async def update_customer(customer_id: UUID, body: CustomerPatch, uow: TenantUow) -> CustomerOut:
    changes = body.model_dump(exclude_unset=True)
    if "address" in changes:
        changes["address"] = address_value(body.address)
    if "metadata" in changes:
        changes["metadata_"] = changes.pop("metadata")
    command = commands.UpdateCustomer(customer_id, changes)
    return await uow.run(_updated, command)


async def _updated(uow: UnitOfWork, command: commands.UpdateCustomer) -> CustomerOut:
    """The update, answered with the customer's balances as the same transaction saw them."""
    customer = await commands.update_customer(uow, command)
    balances = await balances_of(uow.session, [customer.id])
    return customer_out(customer, balances.get(customer.id))


@router.delete("/{customer_id}", status_code=204)
async def delete_customer(customer_id: UUID, uow: TenantUow) -> Response:
    await uow.run(commands.delete_customer, commands.DeleteCustomer(customer_id))
    return Response(status_code=204)


@router.get("/{customer_id}/timeline")
async def customer_timeline(
    customer_id: UUID, session: TenantReader, links: PublicLinks
) -> Timeline:
    """The customer's own events (created, updated, deleted), oldest first."""
    await queries.require_customer(session, customer_id)
    return await timeline.stream(session, customer_id, links)
