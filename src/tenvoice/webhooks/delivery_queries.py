"""The read side of the delivery log, and the operator's counts across tenants."""

import uuid
from dataclasses import dataclass
from functools import cache
from typing import Any

from sqlalchemy import func, inspect, literal, select, text, union_all
from sqlalchemy.ext.asyncio import AsyncConnection

from tenvoice.platform.db import ReadSession
from tenvoice.platform.pagination import Page, PageRequest, SortColumn, paginate, sorts
from tenvoice.webhooks.delivery_schemas import (
    DeliveryDetail,
    DeliveryOut,
    delivery_detail,
    delivery_view,
)
from tenvoice.webhooks.errors import WebhookDeliveryNotFound, WebhookEndpointNotFound
from tenvoice.webhooks.models import (
    DeliveryStatus,
    EndpointStatus,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
)

D = WebhookDelivery
E = WebhookEndpoint


@cache
def _columns() -> list[Any]:
    # Read when first queried, not at import: inspecting the mapper configures every mapper,
    # which fails if a module imports this one before all models are imported.
    return [getattr(D, attr.key) for attr in inspect(D).column_attrs]


NEWEST_FIRST = sorts({"createdAt": SortColumn(D.created_at, "datetime")}, D.id)["-createdAt"]


@dataclass(frozen=True, slots=True)
class DeliveryFilters:
    statuses: tuple[str, ...] = ()
    event_types: tuple[str, ...] = ()


async def _require_endpoint(session: ReadSession, endpoint_id: uuid.UUID) -> None:
    found = await session.scalar(select(E.id).where(E.id == endpoint_id))
    if found is None:
        raise WebhookEndpointNotFound(f"No webhook endpoint {endpoint_id}.")


async def list_deliveries(
    session: ReadSession, endpoint_id: uuid.UUID, filters: DeliveryFilters, page: PageRequest
) -> Page[DeliveryOut]:
    await _require_endpoint(session, endpoint_id)
    statement = select(*_columns()).where(D.endpoint_id == endpoint_id)
    if filters.statuses:
        statement = statement.where(D.status.in_(filters.statuses))
    if filters.event_types:
        statement = statement.where(D.event_type.in_(filters.event_types))
    result = await paginate(session, statement, NEWEST_FIRST, page)
    return Page(data=[delivery_view(row) for row in result.rows], pagination=result.pagination)


async def get_delivery(
    session: ReadSession, endpoint_id: uuid.UUID, delivery_id: uuid.UUID
) -> DeliveryDetail:
    await _require_endpoint(session, endpoint_id)
    row = (
        await session.execute(
            select(*_columns()).where(D.id == delivery_id, D.endpoint_id == endpoint_id)
        )
    ).first()
    if row is None:
        raise WebhookDeliveryNotFound(f"No delivery {delivery_id} to this endpoint.")
    attempts = await session.execute(
        select(
            WebhookAttempt.at,
            WebhookAttempt.response_status,
            WebhookAttempt.duration_ms,
            WebhookAttempt.error,
            WebhookAttempt.response_body,
        )
        .where(WebhookAttempt.delivery_id == delivery_id)
        .order_by(WebhookAttempt.number)
    )
    return delivery_detail(row, list(attempts))


DELIVERIES, ENDPOINTS = "webhook deliveries", "webhook endpoints"


# PostgreSQL: row-level security keeps a connection with no tenant from every tenant's rows,
# so the counts come from a function that visits each tenant and returns numbers only
# (migration 0008). SQLite has no row-level security.
_STATS = text("SELECT kind, state, sum(total) FROM webhook_stats() GROUP BY kind, state")


async def webhook_counts(connection: AsyncConnection) -> dict[str, dict[str, int]]:
    """Deliveries and endpoints by status, across tenants (for operators: `tenvoice jobs`,
    /metrics); every status is present, zero included."""
    if connection.dialect.name == "postgresql":
        rows = (await connection.execute(_STATS)).all()
    else:
        by_status = union_all(
            select(literal("delivery"), D.status, func.count()).group_by(D.status),
            select(literal("endpoint"), E.status, func.count()).group_by(E.status),
        )
        rows = (await connection.execute(by_status)).all()
    counts = {
        DELIVERIES: {status.value: 0 for status in DeliveryStatus},
        ENDPOINTS: {status.value: 0 for status in EndpointStatus},
    }
    for kind, status, total in rows:
        counts[DELIVERIES if kind == "delivery" else ENDPOINTS][status] = int(total)
    return counts
