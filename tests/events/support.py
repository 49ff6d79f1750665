"""HTTP helpers shared by the Events API tests."""

import uuid
from datetime import datetime
from typing import Any

import httpx

from tests.conftest import TenantHandle, get_ok
from tests.invoices.support import timeline

EVENT_FIELDS = {
    "id",
    "eventType",
    "entityType",
    "entityId",
    "occurredAt",
    "requestId",
    "actor",
    "data",
}


async def list_events(
    client: httpx.AsyncClient, tenant: TenantHandle, params: Any = None
) -> dict[str, Any]:
    return await get_ok(client, tenant, "/api/events", params)


async def all_events(
    client: httpx.AsyncClient, tenant: TenantHandle, params: Any = None
) -> list[dict[str, Any]]:
    """Every event the filters match, newest first (one offset page: tests keep under 100)."""
    body = await list_events(client, tenant, [*_pairs(params), ("pageSize", "100")])
    assert body["pagination"]["hasMore"] is False
    events: list[dict[str, Any]] = body["data"]
    return events


async def event_ids(
    client: httpx.AsyncClient, tenant: TenantHandle, params: Any = None
) -> list[str]:
    return [event["id"] for event in await all_events(client, tenant, params)]


def newest_first(events: list[dict[str, Any]]) -> list[str]:
    """The ids in the order the API promises: occurredAt, then id, both descending."""
    ordered = sorted(events, key=lambda e: (occurred(e), uuid.UUID(e["id"])), reverse=True)
    return [event["id"] for event in ordered]


def occurred(event: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(event["occurredAt"])


def _pairs(params: Any) -> list[tuple[str, str]]:
    if params is None:
        return []
    if isinstance(params, dict):
        return [
            (key, item)
            for key, value in params.items()
            for item in (value if isinstance(value, list) else [value])
        ]
    return list(params)


async def read_everywhere(
    client: httpx.AsyncClient, tenant: TenantHandle, event_id: str, invoice_id: str
) -> list[dict[str, Any]]:
    """The event as the list, the single read and the invoice's timeline give it."""
    listed = [e for e in await all_events(client, tenant) if e["id"] == event_id]
    one = await client.get(f"/api/events/{event_id}", headers=tenant.headers)
    assert one.status_code == 200, one.text
    on_timeline = [e for e in await timeline(client, tenant, invoice_id) if e["id"] == event_id]
    assert len(listed) == len(on_timeline) == 1
    return [listed[0], one.json(), on_timeline[0]]
