"""The delivery log of an endpoint (API.md: Outbound webhooks), and manual redelivery."""

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, Query
from pydantic import StringConstraints

from tenvoice.api import Paging, TenantReader, TenantUow
from tenvoice.platform.pagination import Page
from tenvoice.platform.schemas import choices, documented_choices, problem_responses
from tenvoice.webhooks import delivery_commands as commands
from tenvoice.webhooks import delivery_queries as queries
from tenvoice.webhooks.delivery_schemas import DeliveryDetail, DeliveryOut, delivery_view
from tenvoice.webhooks.models import DeliveryStatus

router = APIRouter(
    prefix="/api/webhook-endpoints/{endpoint_id}/deliveries",
    tags=["webhook endpoints"],
    responses=problem_responses(400, 401, 403, 404, 409, 413, 415, 422),
)


async def delivery_filters(
    status: Annotated[
        list[Annotated[str, documented_choices(DeliveryStatus)]] | None, Query(max_length=100)
    ] = None,
    event_type: Annotated[
        list[Annotated[str, StringConstraints(min_length=1, max_length=64)]] | None,
        Query(alias="eventType", max_length=100),
    ] = None,
) -> queries.DeliveryFilters:
    return queries.DeliveryFilters(
        statuses=choices("status", status or [], DeliveryStatus),
        event_types=tuple(event_type or ()),
    )


@router.get("", summary="List an endpoint's deliveries, newest first")
async def list_deliveries(
    endpoint_id: UUID,
    session: TenantReader,
    page: Paging,
    filters: Annotated[queries.DeliveryFilters, Depends(delivery_filters)],
) -> Page[DeliveryOut]:
    return await queries.list_deliveries(session, endpoint_id, filters, page)


@router.get("/{delivery_id}", summary="Get a delivery with its attempts")
async def get_delivery(
    endpoint_id: UUID, delivery_id: UUID, session: TenantReader
) -> DeliveryDetail:
    return await queries.get_delivery(session, endpoint_id, delivery_id)


@router.post("/{delivery_id}/retry", status_code=202, summary="Send a delivery again now")
async def retry_delivery(endpoint_id: UUID, delivery_id: UUID, uow: TenantUow) -> DeliveryOut:
    """Send the delivery again now; 409 webhook_endpoint_disabled while its endpoint is."""
    command = commands.RetryDelivery(endpoint_id, delivery_id)
    return delivery_view(await uow.run(commands.retry_delivery, command))
