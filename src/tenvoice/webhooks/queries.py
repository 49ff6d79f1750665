import uuid
from typing import Any

from sqlalchemy import select

from tenvoice.platform.db import ReadSession
from tenvoice.platform.pagination import Page, PageRequest, SortColumn, paginate, sorts
from tenvoice.webhooks.errors import WebhookEndpointNotFound
from tenvoice.webhooks.models import WebhookEndpoint
from tenvoice.webhooks.schemas import WebhookEndpointOut

E = WebhookEndpoint
_NEWEST_FIRST = sorts({"createdAt": SortColumn(E.created_at, "datetime")}, E.id)["-createdAt"]
# What the wire shows, and nothing else: the sealed secrets are never read here.
_COLUMNS: tuple[Any, ...] = (
    E.id,
    E.url,
    E.description,
    E.enabled_events,
    E.status,
    E.disabled_reason,
    E.metadata_.label("metadata"),
    E.created_at,
    E.updated_at,
)

_ENDPOINTS = select(*_COLUMNS)


async def get_endpoint(session: ReadSession, endpoint_id: uuid.UUID) -> WebhookEndpointOut:
    row = (await session.execute(_ENDPOINTS.where(E.id == endpoint_id))).first()
    if row is None:
        raise WebhookEndpointNotFound(f"No webhook endpoint {endpoint_id}.")
    return WebhookEndpointOut.model_validate(row._mapping)


async def list_endpoints(session: ReadSession, page: PageRequest) -> Page[WebhookEndpointOut]:
    result = await paginate(session, _ENDPOINTS, _NEWEST_FIRST, page)
    return Page(
        data=[WebhookEndpointOut.model_validate(row._mapping) for row in result.rows],
        pagination=result.pagination,
    )
