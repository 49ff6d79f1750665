"""Fan-out happens in the change's own transaction: a delivery for every enabled endpoint of
the tenant subscribed to the event (type, `prefix.*` or `*`), and one dispatch job for each
endpoint that got one. Endpoints are written straight to the database here; the routes that
manage them are tested on their own."""

import uuid
from typing import Any

import httpx
from sqlalchemy import func, select

from tenvoice.events.models import Event
from tenvoice.platform.db import Database, utcnow
from tenvoice.platform.outbox import OutboxJob
from tenvoice.webhooks.fanout import DISPATCH, dispatch_key
from tenvoice.webhooks.models import (
    EndpointStatus,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookSubscription,
)
from tests.conftest import TenantHandle, make_customer, make_invoice


async def add_endpoint(
    db: Database, tenant: TenantHandle, patterns: list[str], *, enabled: bool = True
) -> uuid.UUID:
    tenant_id = uuid.UUID(tenant.id)
    endpoint_id = uuid.uuid4()
    now = utcnow()
    async with db.write(tenant_id) as session:
        session.add(
            WebhookEndpoint(
                id=endpoint_id,
                url="https://example.com/hook",
                enabled_events=patterns,
                status=(EndpointStatus.ENABLED if enabled else EndpointStatus.DISABLED).value,
                metadata_={},
                secret="v1:unused",
                created_at=now,
                updated_at=now,
                failed_attempts=0,
            )
        )
        await session.flush()
        session.add_all(
            WebhookSubscription(endpoint_id=endpoint_id, pattern=pattern) for pattern in patterns
        )
        await session.commit()
    return endpoint_id


async def deliveries(db: Database, tenant: TenantHandle) -> list[tuple[uuid.UUID, str, uuid.UUID]]:
    """(endpoint, event type, event id) of every delivery, in event order."""
    async with db.read(uuid.UUID(tenant.id)) as session:
        rows = await session.execute(
            select(
                WebhookDelivery.endpoint_id, WebhookDelivery.event_type, WebhookDelivery.event_id
            ).order_by(WebhookDelivery.event_id, WebhookDelivery.endpoint_id)
        )
        return [(row.endpoint_id, row.event_type, row.event_id) for row in rows]


async def dispatch_jobs(db: Database) -> list[str | None]:
    async with db.lookup() as connection:
        rows = await connection.execute(
            select(OutboxJob.dedupe_key).where(OutboxJob.kind == DISPATCH).order_by(OutboxJob.id)
        )
        return [row.dedupe_key for row in rows]


async def test_each_subscribed_endpoint_gets_one_delivery_per_event(
    client: httpx.AsyncClient, db: Database, tenant_a: TenantHandle, tenant_b: TenantHandle
) -> None:
    everything = await add_endpoint(db, tenant_a, ["*"])
    # Two entries match invoice.created: still one delivery.
    invoices = await add_endpoint(db, tenant_a, ["invoice.*", "invoice.created"])
    customers_only = await add_endpoint(db, tenant_a, ["customer.created"])
    await add_endpoint(db, tenant_a, ["*"], enabled=False)
    await add_endpoint(db, tenant_b, ["*"])

    customer = await make_customer(client, tenant_a)
    await make_invoice(client, tenant_a, customer["id"])

    got = await deliveries(db, tenant_a)
    by_type: dict[str, set[uuid.UUID]] = {}
    for endpoint, event_type, _ in got:
        by_type.setdefault(event_type, set()).add(endpoint)
    assert by_type == {
        "customer.created": {everything, customers_only},
        "invoice.created": {everything, invoices},
    }
    assert len(got) == 4
    # The other tenant's endpoint saw none of it.
    assert await deliveries(db, tenant_b) == []
    # One dispatch per endpoint per transaction that queued something for it.
    keys = await dispatch_jobs(db)
    expected = [everything, customers_only, everything, invoices]
    assert sorted(keys, key=str) == sorted(map(dispatch_key, expected))


async def test_a_delivery_points_at_its_logged_event(
    client: httpx.AsyncClient, db: Database, tenant_a: TenantHandle
) -> None:
    endpoint = await add_endpoint(db, tenant_a, ["customer.*"])
    customer = await make_customer(client, tenant_a)
    [(got_endpoint, event_type, event_id)] = await deliveries(db, tenant_a)
    assert (got_endpoint, event_type) == (endpoint, "customer.created")
    async with db.read(uuid.UUID(tenant_a.id)) as session:
        event = (await session.execute(select(Event).where(Event.id == event_id))).scalar_one()
    assert event.entity_id == uuid.UUID(customer["id"])
    assert event.data["object"] == customer


async def test_no_endpoint_no_delivery_and_no_job(
    client: httpx.AsyncClient, db: Database, tenant_a: TenantHandle
) -> None:
    await make_customer(client, tenant_a)
    assert await deliveries(db, tenant_a) == []
    assert await dispatch_jobs(db) == []


async def test_a_change_that_fails_leaves_no_event_and_no_delivery(
    client: httpx.AsyncClient, db: Database, tenant_a: TenantHandle
) -> None:
    await add_endpoint(db, tenant_a, ["*"])
    customer = await make_customer(client, tenant_a)
    before = await deliveries(db, tenant_a)
    # An invoice for a customer that does not exist is refused: nothing of it may remain.
    response = await client.post(
        "/api/invoices",
        json={
            "customerId": str(uuid.uuid4()),
            "items": [{"description": "x", "quantity": 1, "unitPrice": 1}],
        },
        headers=tenant_a.headers,
    )
    assert response.status_code in (404, 422), response.text
    assert await deliveries(db, tenant_a) == before
    async with db.read(uuid.UUID(tenant_a.id)) as session:
        logged: Any = await session.scalar(select(func.count()).select_from(Event))
    assert logged == 1
    assert customer["id"]


async def test_a_disabled_endpoint_is_an_event_for_the_others(
    client: httpx.AsyncClient, db: Database, tenant_a: TenantHandle
) -> None:
    watcher = await add_endpoint(db, tenant_a, ["webhook_endpoint.*"])
    watched = await add_endpoint(db, tenant_a, ["webhook_endpoint.disabled"])
    response = await client.patch(
        f"/api/webhook-endpoints/{watched}", json={"status": "disabled"}, headers=tenant_a.headers
    )
    assert response.status_code == 200, response.text
    # Only the endpoint still enabled hears that the other was disabled.
    [(endpoint, event_type, event_id)] = await deliveries(db, tenant_a)
    assert (endpoint, event_type) == (watcher, "webhook_endpoint.disabled")
    async with db.read(uuid.UUID(tenant_a.id)) as session:
        event = (await session.execute(select(Event).where(Event.id == event_id))).scalar_one()
    assert event.data["object"] == response.json()
    assert event.data["reason"] == "disabled by request"
