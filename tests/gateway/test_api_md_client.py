"""A client written from /work/shared/API.md alone, against the service on a real socket.

Nothing of the service's own code is used here: requests, the webhook signer and every
expectation come from the contract's text (and the Standard Webhooks scheme it names), so
this is what an integrator reading API.md would get. The server is started through
tests.live, with the simulated gateway answering over real HTTP.
"""

import base64
import hashlib
import hmac
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson
import pytest

from tests.conftest import ADMIN_KEY, WEBHOOK_SECRET
from tests.live import LiveServer, eventually, live_server

WEBHOOK_PATH = "/api/webhooks/payments"
ITEMS = [
    {"description": "Consulting", "quantity": 2, "unitPrice": "100"},
    {"description": "Support", "quantity": 1, "unitPrice": "50"},
]


def webhook_headers(secret: str, webhook_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """API.md: `v1,<base64 HMAC-SHA256(secret, "{id}.{timestamp}.{body}")>`; per Standard
    Webhooks the HMAC key is the base64 after `whsec_`, decoded."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{webhook_id}.{timestamp}.".encode() + body
    digest = hmac.new(key, signed, hashlib.sha256).digest()
    return {
        "webhook-id": webhook_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": "v1," + base64.b64encode(digest).decode(),
        "content-type": "application/json",
    }


@pytest.fixture
async def server(
    # The harness's objects, handed to tests.live untouched: typed loosely on purpose, as
    # this file may name nothing of the service's code.
    settings: Any,
    db: Any,
    event_handlers: Any,
) -> AsyncIterator[LiveServer]:
    async with live_server(settings, db, event_handlers, gateway_latency_ms=0) as live:
        yield live


def created(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 201, response.text
    assert response.headers["x-request-id"]
    body: dict[str, Any] = response.json()
    return body


def ok(response: httpx.Response) -> Any:
    assert response.status_code == 200, response.text
    assert response.headers["x-request-id"]
    return response.json()


def problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body.keys() >= {"type", "title", "status", "detail", "code", "requestId"}, body
    assert body["status"] == status
    assert body["code"] == code
    assert body["requestId"] == response.headers["x-request-id"]
    return body


class Client:
    """A tenant's view of the API, as API.md describes it."""

    def __init__(self, http: httpx.AsyncClient, key: str) -> None:
        self.http = http
        self.auth = {"Authorization": f"Bearer {key}"}

    async def post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        return created(await self.http.post(path, json=body, headers=self.auth))

    async def get(self, path: str) -> Any:
        return ok(await self.http.get(path, headers=self.auth))

    async def snapshot(self, invoice_id: str, payment_id: str) -> tuple[Any, Any, Any]:
        return (
            await self.get(f"/api/invoices/{invoice_id}"),
            await self.get(f"/api/payments/{payment_id}"),
            await self.get(f"/api/invoices/{invoice_id}/timeline"),
        )


async def sign_up(http: httpx.AsyncClient) -> Client:
    admin = {"Authorization": f"Bearer {ADMIN_KEY}"}
    tenant = created(
        await http.post(
            "/api/tenants", json={"name": "Integrator", "defaultTaxRate": "11"}, headers=admin
        )
    )
    assert tenant["id"]
    key = created(
        await http.post(
            f"/api/tenants/{tenant['id']}/api-keys", json={"name": "integration"}, headers=admin
        )
    )
    assert key.keys() >= {"id", "name", "key", "prefix", "createdAt"}
    assert key["key"].startswith("tv_sk_")
    assert len(key["key"]) >= len("tv_sk_") + 32
    listed = ok(await http.get(f"/api/tenants/{tenant['id']}/api-keys", headers=admin))
    assert all("key" not in entry for entry in listed["data"])
    return Client(http, key["key"])


async def open_invoice(client: Client) -> dict[str, Any]:
    customer = await client.post(
        "/api/customers", {"name": "Grace Hopper", "email": f"{uuid.uuid4().hex[:8]}@example.com"}
    )
    invoice = await client.post(
        "/api/invoices", {"customerId": customer["id"], "items": ITEMS, "finalize": True}
    )
    assert invoice["status"] == "open"
    assert invoice["number"]
    # API.md's own example: 2 x 100 and 1 x 50 at 11%.
    assert (invoice["subtotal"], invoice["tax"], invoice["total"]) == ("250.00", "27.50", "277.50")
    assert invoice["amountDue"] == "277.50"
    return invoice


async def test_a_payment_travels_through_the_gateway_to_a_paid_invoice(
    server: LiveServer,
) -> None:
    client = await sign_up(server.client)
    invoice = await open_invoice(client)

    payment = await client.post(
        "/api/payments", {"invoiceId": invoice["id"], "amount": "277.50", "method": "card"}
    )
    assert payment["status"] == "pending"
    assert (payment["amount"], payment["currency"]) == ("277.50", "USD")

    async def paid() -> dict[str, Any]:
        current: dict[str, Any] = await client.get(f"/api/invoices/{invoice['id']}")
        return current if current["status"] == "paid" else {}

    settled = await eventually(paid)
    assert settled["amountPaid"] == "277.50"
    assert settled["amountDue"] == "0.00"
    assert settled["paidAt"] is not None
    payment = await client.get(f"/api/payments/{payment['id']}")
    assert payment["status"] == "succeeded"
    assert payment["gatewayReference"]
    assert payment["succeededAt"] is not None

    timeline = (await client.get(f"/api/invoices/{invoice['id']}/timeline"))["data"]
    types = [entry["eventType"] for entry in timeline]
    assert types == [
        "invoice.created",
        "invoice.finalized",
        "payment.attempted",
        "payment.succeeded",
        "invoice.paid",
    ], types
    by_type = {entry["eventType"]: entry for entry in timeline}
    assert by_type["payment.attempted"]["actor"]["type"] == "api_key"
    assert by_type["payment.succeeded"]["actor"]["type"] == "gateway"
    assert by_type["payment.succeeded"]["entityId"] == payment["id"]
    occurred = [entry["occurredAt"] for entry in timeline]
    assert occurred == sorted(occurred)


async def test_an_attacker_cannot_forge_delay_or_replay_a_webhook(server: LiveServer) -> None:
    client = await sign_up(server.client)
    invoice = await open_invoice(client)
    # tok_pending: the gateway never answers it, so the only webhooks are the ones sent here.
    payment = await client.post(
        "/api/payments",
        {
            "invoiceId": invoice["id"],
            "amount": "277.50",
            "method": "card",
            "paymentToken": "tok_pending",
        },
    )
    before = await client.snapshot(invoice["id"], payment["id"])
    body = orjson.dumps(
        {
            "type": "payment.succeeded",
            "data": {
                "paymentId": payment["id"],
                "gatewayReference": "ch_attack_1",
                "amount": "277.50",
                "currency": "USD",
            },
        }
    )
    webhook_id = f"msg_{uuid.uuid4().hex}"
    now = int(time.time())
    http = server.client

    forged_secret = "whsec_" + base64.b64encode(b"guessed-by-the-attacker").decode()
    forged = await http.post(
        WEBHOOK_PATH, content=body, headers=webhook_headers(forged_secret, webhook_id, now, body)
    )
    problem(forged, 401, "invalid_signature")

    stale = await http.post(
        WEBHOOK_PATH,
        content=body,
        headers=webhook_headers(WEBHOOK_SECRET, webhook_id, now - 10 * 60, body),
    )
    problem(stale, 401, "invalid_signature")
    assert await client.snapshot(invoice["id"], payment["id"]) == before

    captured = webhook_headers(WEBHOOK_SECRET, webhook_id, now, body)
    genuine = await http.post(WEBHOOK_PATH, content=body, headers=captured)
    assert ok(genuine) == {"status": "processed"}
    applied = await client.snapshot(invoice["id"], payment["id"])
    assert applied[0]["status"] == "paid"
    assert applied[1]["status"] == "succeeded"

    replayed = await http.post(WEBHOOK_PATH, content=body, headers=captured)
    assert ok(replayed) == {"status": "duplicate"}
    assert await client.snapshot(invoice["id"], payment["id"]) == applied
    events = [entry["eventType"] for entry in applied[2]["data"]]
    assert events.count("payment.succeeded") == 1
    assert events.count("invoice.paid") == 1
