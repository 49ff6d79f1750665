"""Deliveries of events made through the API, to endpoints registered through the API: the
whole way a tenant sees it, from the change to the verified webhook at its receiver."""

from typing import Any

import httpx
import pytest

from tenvoice.config import Settings
from tenvoice.platform.db import Database
from tenvoice.platform.messages import EventHandlers
from tests.conftest import ADMIN_KEY, TenantHandle, make_customer, make_invoice, make_tenant
from tests.live import eventually, live_server
from tests.payments.support import pay
from tests.webhooks.deliveries import SCHEDULE, delivery_settings, delivery_worker
from tests.webhooks.receivers import Receiver, serving, verified


@pytest.fixture
def settings(settings: Settings) -> Settings:
    # Receivers listen on loopback over plain HTTP.
    return delivery_settings(settings)


async def register(
    client: httpx.AsyncClient, tenant: TenantHandle, url: str, events: list[str]
) -> dict[str, Any]:
    body = {"url": url, "enabledEvents": events}
    response = await client.post("/api/webhook-endpoints", json=body, headers=tenant.headers)
    assert response.status_code == 201, response.text
    endpoint: dict[str, Any] = response.json()
    return endpoint


async def test_a_paid_invoice_reaches_the_receiver_verified_with_its_snapshot(
    settings: Settings, db: Database, event_handlers: EventHandlers
) -> None:
    admin = {"Authorization": f"Bearer {ADMIN_KEY}"}
    async with (
        serving(Receiver()) as receiver,
        live_server(
            settings,
            db,
            event_handlers,
            webhook_retry_schedule=SCHEDULE,
            public_base_url="https://pay.example.com",
        ) as live,
    ):
        tenant = await make_tenant(live.client, admin, "Acme", defaultTaxRate="11")
        endpoint = await register(live.client, tenant, receiver.url(), ["invoice.paid"])
        customer = await make_customer(live.client, tenant)
        invoice = await make_invoice(live.client, tenant, customer["id"], finalize=True)
        assert (await pay(live.client, tenant, invoice["id"], invoice["total"])).status_code == 201
        await eventually(lambda: _received(receiver, 1), timeout=20)
        paid = await live.client.get(f"/api/invoices/{invoice['id']}", headers=tenant.headers)

    (request,) = receiver.received
    payload = verified(endpoint["secret"], request)
    assert payload["type"] == "invoice.paid"
    assert payload["id"] == request.webhook_id
    # The invoice as GET returned it right after it was paid (its public link aside: the
    # event log does not keep the token).
    snapshot = {k: v for k, v in payload["data"]["object"].items() if k != "hostedUrl"}
    assert snapshot == {k: v for k, v in paid.json().items() if k != "hostedUrl"}
    assert payload["data"]["object"]["status"] == "paid"
    # With TENVOICE_PUBLIC_BASE_URL the worker knows where customers reach the service, so
    # the snapshot carries the invoice's public link exactly as GET does.
    assert payload["data"]["object"] == paid.json()
    assert paid.json()["hostedUrl"].startswith("https://pay.example.com/hosted/invoices/")


async def _received(receiver: Receiver, count: int) -> bool:
    return len(receiver.received) >= count


async def test_changes_arrive_in_the_order_they_were_made(
    client: httpx.AsyncClient, db: Database, settings: Settings, tenant_a: TenantHandle
) -> None:
    async with serving(Receiver()) as receiver:
        everything = await register(client, tenant_a, receiver.url("/all"), ["*"])
        updates = await register(client, tenant_a, receiver.url("/updates"), ["customer.updated"])
        customer = await make_customer(client, tenant_a, "v0")
        for n in range(1, 21):
            response = await client.patch(
                f"/api/customers/{customer['id']}", json={"name": f"v{n}"}, headers=tenant_a.headers
            )
            assert response.status_code == 200, response.text
        async with delivery_worker(db, settings) as worker:
            await worker.drain()

    def names(path: str, secret: str) -> list[tuple[str, str]]:
        payloads = [verified(secret, r) for r in receiver.received if r.path == path]
        return [(p["type"], p["data"]["object"]["name"]) for p in payloads]

    changes = [("customer.updated", f"v{n}") for n in range(1, 21)]
    assert names("/all", everything["secret"]) == [("customer.created", "v0"), *changes]
    assert names("/updates", updates["secret"]) == changes


async def test_two_tenants_sharing_one_receiver_each_get_only_their_own_events(
    client: httpx.AsyncClient, admin: dict[str, str], db: Database, settings: Settings
) -> None:
    tenants = [await make_tenant(client, admin, name) for name in ("Acme", "Globex")]
    async with serving(Receiver()) as receiver:
        # The very same URL for both: only the signature tells the deliveries apart.
        secrets = {
            t.id: (await register(client, t, receiver.url(), ["customer.created"]))["secret"]
            for t in tenants
        }
        made: dict[str, list[str]] = {t.id: [] for t in tenants}
        for n in range(4):
            for tenant in tenants:
                made[tenant.id].append((await make_customer(client, tenant, f"c{n}"))["id"])
        async with delivery_worker(db, settings) as worker:
            await worker.drain()

    assert len(receiver.received) == 8
    got: dict[str, list[str]] = {t.id: [] for t in tenants}
    for request in receiver.received:
        owners = []
        for tenant_id, secret in secrets.items():
            try:
                payload = verified(secret, request)
            except Exception:  # noqa: S112 (signed with the other tenant's secret)
                continue
            owners.append(tenant_id)
            got[tenant_id].append(payload["data"]["object"]["id"])
        assert len(owners) == 1
    assert got == made
