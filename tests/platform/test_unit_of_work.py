"""Events are handled inside the transaction of the change that raised them."""

import httpx
import pytest
from fastapi import FastAPI

from tenvoice.config import Settings
from tenvoice.handlers import EVENT_HANDLERS
from tenvoice.invoices.events import InvoiceCreated, InvoiceFinalized
from tenvoice.main import create_app
from tenvoice.platform.db import Database
from tenvoice.platform.messages import DomainEvent, EventHandler
from tenvoice.platform.uow import UnitOfWork
from tests.conftest import ADMIN_KEY, TenantHandle, make_customer, make_invoice


class HandlerFailed(RuntimeError):
    pass


async def _explode(event: DomainEvent, uow: UnitOfWork) -> None:
    raise HandlerFailed(f"handler failed on {event.event_type}")


def _with_failing(event: type) -> dict[type, list[EventHandler]]:
    # The failing handler runs after the timeline handler, so the timeline row is already
    # in the session when the failure comes: it must vanish with the change.
    handlers = {key: list(value) for key, value in EVENT_HANDLERS.items()}
    handlers[event] = [*handlers.get(event, []), _explode]
    return handlers


def _failing_client(settings: Settings, db: Database, event: type) -> httpx.AsyncClient:
    app: FastAPI = create_app(settings, db=db, event_handlers=_with_failing(event))
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    return httpx.AsyncClient(transport=transport, base_url="http://tenvoice.test")


async def test_failing_handler_rolls_back_the_created_invoice(
    client: httpx.AsyncClient, settings: Settings, db: Database, tenant_a: TenantHandle
) -> None:
    customer = await make_customer(client, tenant_a)
    async with _failing_client(settings, db, InvoiceCreated) as failing:
        response = await failing.post(
            "/api/invoices",
            json={
                "customerId": customer["id"],
                "items": [{"description": "x", "quantity": 1, "unitPrice": 5}],
            },
            headers=tenant_a.headers,
        )
    assert response.status_code == 500
    assert "handler failed" not in response.text
    listed = await client.get("/api/invoices?includeTotal=true", headers=tenant_a.headers)
    assert listed.json()["pagination"]["totalCount"] == 0


async def test_failing_handler_rolls_back_the_transition_and_its_number(
    client: httpx.AsyncClient, settings: Settings, db: Database, tenant_a: TenantHandle
) -> None:
    customer = await make_customer(client, tenant_a)
    invoice = await make_invoice(client, tenant_a, customer["id"])
    async with _failing_client(settings, db, InvoiceFinalized) as failing:
        response = await failing.post(
            f"/api/invoices/{invoice['id']}/finalize", headers=tenant_a.headers
        )
    assert response.status_code == 500

    after = (await client.get(f"/api/invoices/{invoice['id']}", headers=tenant_a.headers)).json()
    assert after["status"] == "draft"
    assert after["number"] is None
    timeline = await client.get(f"/api/invoices/{invoice['id']}/timeline", headers=tenant_a.headers)
    assert [e["eventType"] for e in timeline.json()["data"]] == ["invoice.created"]

    # The number the failed finalize drew was rolled back with it: no gap.
    finalized = await client.post(
        f"/api/invoices/{invoice['id']}/finalize", headers=tenant_a.headers
    )
    assert finalized.json()["number"].endswith("-00001")


@pytest.mark.parametrize("admin_acts", [True, False])
async def test_timeline_rows_carry_actor_and_request_id(
    client: httpx.AsyncClient, tenant_a: TenantHandle, admin_acts: bool
) -> None:
    headers = (
        {"Authorization": f"Bearer {ADMIN_KEY}", "X-Tenant-Id": tenant_a.id}
        if admin_acts
        else tenant_a.headers
    )
    customer = await make_customer(client, tenant_a)
    response = await client.post(
        "/api/invoices",
        json={
            "customerId": customer["id"],
            "items": [{"description": "x", "quantity": 1, "unitPrice": 5}],
        },
        headers={**headers, "X-Request-Id": "req-timeline-1"},
    )
    assert response.status_code == 201
    timeline = await client.get(f"/api/invoices/{response.json()['id']}/timeline", headers=headers)
    (event,) = timeline.json()["data"]
    assert event["requestId"] == "req-timeline-1"
    expected = (
        {"type": "admin", "id": None} if admin_acts else {"type": "api_key", "id": tenant_a.key_id}
    )
    assert event["actor"] == expected
    assert event["data"]["total"] == "5.55"
