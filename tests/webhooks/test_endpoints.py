"""Webhook endpoints (API.md, Outbound webhooks): create, read, list, change and delete; the
signing secret is shown once and kept only sealed."""

import base64
import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from tenvoice.events.catalog import EVENT_TYPES
from tenvoice.platform.db import Database
from tenvoice.platform.idempotency import IdempotencyKey
from tenvoice.platform.outbox import OutboxJob
from tenvoice.webhooks.fanout import DISPATCH
from tenvoice.webhooks.models import WebhookDelivery, WebhookEndpoint, WebhookSubscription
from tenvoice.webhooks.secrets import SecretBox
from tests.conftest import SECRETS_KEY, TenantHandle
from tests.problems import assert_problem, error_fields

# A literal public address: saving it needs no DNS (none answers in the test sandbox).
PUBLIC_URL = "https://93.184.216.34/hooks"
WIRE_FIELDS = {
    "id",
    "url",
    "description",
    "enabledEvents",
    "status",
    "disabledReason",
    "metadata",
    "createdAt",
    "updatedAt",
}


async def make_endpoint(
    client: httpx.AsyncClient, tenant: TenantHandle, **fields: Any
) -> dict[str, Any]:
    body = {"url": PUBLIC_URL, "enabledEvents": ["invoice.paid"], **fields}
    response = await client.post("/api/webhook-endpoints", json=body, headers=tenant.headers)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def stored_endpoint(db: Database, tenant: TenantHandle, endpoint_id: str) -> WebhookEndpoint:
    async with db.read(uuid.UUID(tenant.id)) as session:
        key = (uuid.UUID(tenant.id), uuid.UUID(endpoint_id))
        endpoint = await session.get(WebhookEndpoint, key)
    assert endpoint is not None
    return endpoint


async def subscriptions(db: Database, tenant: TenantHandle, endpoint_id: str) -> set[str]:
    async with db.read(uuid.UUID(tenant.id)) as session:
        patterns = await session.scalars(
            select(WebhookSubscription.pattern).where(
                WebhookSubscription.endpoint_id == uuid.UUID(endpoint_id)
            )
        )
        return set(patterns)


async def deliveries(db: Database, tenant: TenantHandle, endpoint_id: str) -> list[WebhookDelivery]:
    async with db.read(uuid.UUID(tenant.id)) as session:
        rows = await session.scalars(
            select(WebhookDelivery).where(WebhookDelivery.endpoint_id == uuid.UUID(endpoint_id))
        )
        return list(rows)


async def dispatch_jobs(db: Database, endpoint_id: str) -> int:
    async with db.lookup(primary=True) as connection:
        payloads = (
            await connection.scalars(select(OutboxJob.payload).where(OutboxJob.kind == DISPATCH))
        ).all()
    return sum(1 for payload in payloads if payload == {"endpointId": endpoint_id})


async def every_stored_text(db: Database, tenant: TenantHandle) -> list[str]:
    """Every column of every endpoint row and idempotency key row, as text: where a plain
    secret could hide."""
    async with db.read(uuid.UUID(tenant.id)) as session:
        endpoints = (await session.execute(select(WebhookEndpoint.__table__))).all()
    async with db.lookup(primary=True) as connection:
        keys = (await connection.execute(select(IdempotencyKey.__table__))).all()
    return [
        value.decode(errors="replace") if isinstance(value, bytes) else str(value)
        for row in [*endpoints, *keys]
        for value in row
    ]


async def test_create_shows_the_secret_once_and_keeps_it_sealed(
    client: httpx.AsyncClient, db: Database, tenant_a: TenantHandle
) -> None:
    body = {
        "url": PUBLIC_URL,
        "enabledEvents": ["invoice.paid", "payment.*"],
        "description": "ERP sync",
        "metadata": {"team": "billing", "shard": 3},
    }
    headers = {**tenant_a.headers, "Idempotency-Key": "create-endpoint-1"}
    response = await client.post("/api/webhook-endpoints", json=body, headers=headers)
    assert response.status_code == 201, response.text
    created = response.json()
    assert created.keys() == WIRE_FIELDS | {"secret"}
    assert created["url"] == PUBLIC_URL
    assert created["enabledEvents"] == ["invoice.paid", "payment.*"]
    assert created["description"] == "ERP sync"
    assert created["metadata"] == {"team": "billing", "shard": "3"}
    assert (created["status"], created["disabledReason"]) == ("enabled", None)
    assert created["createdAt"].endswith("Z")
    secret = created["secret"]
    assert secret.startswith("whsec_")
    assert len(base64.b64decode(secret.removeprefix("whsec_"))) == 32

    # Sealed at rest, bound to this tenant and endpoint; no plain copy anywhere.
    stored = await stored_endpoint(db, tenant_a, created["id"])
    assert stored.secret != secret
    assert SecretBox(SECRETS_KEY).open(stored.secret, stored.tenant_id, stored.id) == secret
    assert not any("whsec_" in text for text in await every_stored_text(db, tenant_a))
    assert await subscriptions(db, tenant_a, created["id"]) == {"invoice.paid", "payment.*"}

    # Shown once: GET and the list never carry it, and a retry is refused, not replayed.
    fetched = await client.get(f"/api/webhook-endpoints/{created['id']}", headers=tenant_a.headers)
    assert fetched.status_code == 200, fetched.text
    assert fetched.json() == {k: v for k, v in created.items() if k != "secret"}
    listed = await client.get("/api/webhook-endpoints", headers=tenant_a.headers)
    assert listed.json()["data"] == [fetched.json()]
    retry = await client.post("/api/webhook-endpoints", json=body, headers=headers)
    problem = assert_problem(retry, 409, "idempotency_key_secret_not_replayable")
    assert "whsec_" not in retry.text
    assert "rotate" in problem["detail"]
    listed = await client.get("/api/webhook-endpoints", headers=tenant_a.headers)
    assert len(listed.json()["data"]) == 1
    assert not any("whsec_" in text for text in await every_stored_text(db, tenant_a))


async def test_every_secret_is_new(client: httpx.AsyncClient, tenant_a: TenantHandle) -> None:
    secrets = {(await make_endpoint(client, tenant_a))["secret"] for _ in range(3)}
    assert len(secrets) == 3


async def test_defaults(client: httpx.AsyncClient, tenant_a: TenantHandle) -> None:
    created = await make_endpoint(client, tenant_a, enabledEvents=["*"])
    assert (created["description"], created["metadata"]) == (None, {})
    assert created["enabledEvents"] == ["*"]


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        ({"enabledEvents": []}, "enabledEvents", "at least 1"),
        ({"enabledEvents": ["invoice.exploded"]}, "enabledEvents[0]", "'invoice.exploded'"),
        ({"enabledEvents": ["invoice.paid", "nope.*"]}, "enabledEvents[1]", "'nope.*'"),
        ({"enabledEvents": ["invoice"]}, "enabledEvents[0]", "'invoice'"),
        ({"enabledEvents": ["invoice.*.paid"]}, "enabledEvents[0]", "'invoice.*.paid'"),
        ({"enabledEvents": ["webhook_endpoint.test"]}, "enabledEvents[0]", "test"),
        ({"enabledEvents": ["invoice.paid", "invoice.paid"]}, "enabledEvents", "twice"),
        ({"enabledEvents": "invoice.paid"}, "enabledEvents", "list"),
        ({"enabledEvents": [7]}, "enabledEvents[0]", "string"),
        ({"enabledEvents": None}, "enabledEvents", ""),
        ({"url": None}, "url", ""),
        ({"url": ""}, "url", ""),
        ({"url": "https://93.184.216.34/" + "a" * 2030}, "url", "2048"),
        ({"description": "d" * 501}, "description", "500"),
        ({"metadata": {"k": {"nested": 1}}}, "metadata.k", ""),
        ({"metadata": {"": "v"}}, "metadata", ""),
        ({"metadata": {f"k{i}": "v" for i in range(51)}}, "metadata", "50"),
        ({"secret": "whsec_mine"}, "secret", "unknown field"),
        ({"status": "disabled"}, "status", "unknown field"),
    ],
)
async def test_create_validation(
    client: httpx.AsyncClient,
    tenant_a: TenantHandle,
    change: dict[str, Any],
    field: str,
    words: str,
) -> None:
    body = {"url": PUBLIC_URL, "enabledEvents": ["invoice.paid"], **change}
    response = await client.post("/api/webhook-endpoints", json=body, headers=tenant_a.headers)
    problem = assert_problem(response, 422, "validation_failed")
    # (A metadata key's own error is at "metadata..[key]": the platform's field path.)
    assert any(f == field or f.startswith(f"{field}.") for f in error_fields(problem)), problem
    assert words in problem["detail"], problem
    listed = await client.get("/api/webhook-endpoints", headers=tenant_a.headers)
    assert listed.json()["data"] == []


async def test_missing_fields_are_named(client: httpx.AsyncClient, tenant_a: TenantHandle) -> None:
    response = await client.post("/api/webhook-endpoints", json={}, headers=tenant_a.headers)
    problem = assert_problem(response, 422, "validation_failed")
    assert error_fields(problem) == {"url", "enabledEvents"}


async def test_every_documented_pattern_is_taken(
    client: httpx.AsyncClient, tenant_a: TenantHandle
) -> None:
    everything = [*sorted(EVENT_TYPES), "invoice.*", "customer.*", "webhook_endpoint.*", "*"]
    created = await make_endpoint(client, tenant_a, enabledEvents=everything)
    assert created["enabledEvents"] == everything


async def test_list_pages_newest_first_by_offset_and_cursor(
    client: httpx.AsyncClient, tenant_a: TenantHandle, tenant_b: TenantHandle
) -> None:
    made = [(await make_endpoint(client, tenant_a, description=f"n{i}"))["id"] for i in range(5)]
    await make_endpoint(client, tenant_b)
    newest_first = made[::-1]

    first = await client.get(
        "/api/webhook-endpoints",
        params={"pageSize": 2, "includeTotal": "true"},
        headers=tenant_a.headers,
    )
    assert first.status_code == 200, first.text
    assert [e["id"] for e in first.json()["data"]] == newest_first[:2]
    assert first.json()["pagination"] == {
        "page": 1,
        "pageSize": 2,
        "hasMore": True,
        "totalCount": 5,
    }
    third = await client.get(
        "/api/webhook-endpoints", params={"page": 3, "pageSize": 2}, headers=tenant_a.headers
    )
    assert [e["id"] for e in third.json()["data"]] == newest_first[4:]
    assert third.json()["pagination"]["hasMore"] is False

    walked: list[str] = []
    params: dict[str, Any] = {"limit": 2}
    while True:
        page = await client.get("/api/webhook-endpoints", params=params, headers=tenant_a.headers)
        assert page.status_code == 200, page.text
        walked += [e["id"] for e in page.json()["data"]]
        cursor = page.json()["pagination"]["nextCursor"]
        if cursor is None:
            break
        params = {"limit": 2, "cursor": cursor}
    assert walked == newest_first

    mixed = await client.get(
        "/api/webhook-endpoints", params={"page": 1, "cursor": "x"}, headers=tenant_a.headers
    )
    assert_problem(mixed, 422, "validation_failed")


async def test_unknown_endpoint_is_404(client: httpx.AsyncClient, tenant_a: TenantHandle) -> None:
    missing = f"/api/webhook-endpoints/{uuid.uuid4()}"
    calls: list[tuple[str, str, dict[str, Any] | None]] = [
        ("GET", missing, None),
        ("PATCH", missing, {"description": "x"}),
        ("DELETE", missing, None),
        ("POST", f"{missing}/rotate-secret", {}),
        ("POST", f"{missing}/test", None),
    ]
    for method, path, body in calls:
        response = await client.request(method, path, json=body, headers=tenant_a.headers)
        assert_problem(response, 404, "webhook_endpoint_not_found")
    malformed = await client.get("/api/webhook-endpoints/not-a-uuid", headers=tenant_a.headers)
    assert_problem(malformed, 404, "not_found")


async def test_patch_each_field(
    client: httpx.AsyncClient, db: Database, tenant_a: TenantHandle
) -> None:
    created = await make_endpoint(
        client, tenant_a, description="old", metadata={"a": "1"}, enabledEvents=["invoice.*"]
    )
    path = f"/api/webhook-endpoints/{created['id']}"
    secret_before = (await stored_endpoint(db, tenant_a, created["id"])).secret

    async def patch(body: dict[str, Any]) -> dict[str, Any]:
        response = await client.patch(path, json=body, headers=tenant_a.headers)
        assert response.status_code == 200, response.text
        changed: dict[str, Any] = response.json()
        assert changed.keys() == WIRE_FIELDS
        return changed

    moved = await patch({"url": "https://[2606:4700::1111]:8443/in?x=1"})
    assert moved["url"] == "https://[2606:4700::1111]:8443/in?x=1"
    assert moved["updatedAt"] > created["updatedAt"]

    events = await patch({"enabledEvents": ["invoice.paid", "customer.*", "payment.failed"]})
    assert events["enabledEvents"] == ["invoice.paid", "customer.*", "payment.failed"]
    assert await subscriptions(db, tenant_a, created["id"]) == {
        "invoice.paid",
        "customer.*",
        "payment.failed",
    }
    events = await patch({"enabledEvents": ["*"]})
    assert await subscriptions(db, tenant_a, created["id"]) == {"*"}

    described = await patch({"description": "new"})
    assert described["description"] == "new"
    assert (await patch({"description": None}))["description"] is None

    assert (await patch({"metadata": {"b": "2"}}))["metadata"] == {"b": "2"}
    assert (await patch({"metadata": None}))["metadata"] == {}

    # Nothing sent, nothing changed (updatedAt included).
    same = await patch({})
    assert same == await patch({"description": None})

    fetched = await client.get(path, headers=tenant_a.headers)
    assert fetched.json() == same
    assert same["url"] == moved["url"]
    assert same["enabledEvents"] == ["*"]
    assert (await stored_endpoint(db, tenant_a, created["id"])).secret == secret_before


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"url": None}, "url"),
        ({"enabledEvents": None}, "enabledEvents"),
        ({"enabledEvents": []}, "enabledEvents"),
        ({"enabledEvents": ["invoice.nope"]}, "enabledEvents[0]"),
        ({"enabledEvents": ["*", "*"]}, "enabledEvents"),
        ({"status": None}, "status"),
        ({"status": "paused"}, "status"),
        ({"description": "d" * 501}, "description"),
        ({"secret": "whsec_x"}, "secret"),
        ({"disabledReason": "x"}, "disabledReason"),
        ({"id": str(uuid.uuid4())}, "id"),
    ],
)
async def test_patch_validation(
    client: httpx.AsyncClient, tenant_a: TenantHandle, body: dict[str, Any], field: str
) -> None:
    created = await make_endpoint(client, tenant_a)
    path = f"/api/webhook-endpoints/{created['id']}"
    response = await client.patch(path, json=body, headers=tenant_a.headers)
    problem = assert_problem(response, 422, "validation_failed")
    assert field in error_fields(problem)
    assert (await client.get(path, headers=tenant_a.headers)).json() == {
        k: v for k, v in created.items() if k != "secret"
    }


async def test_disable_and_re_enable(
    client: httpx.AsyncClient, db: Database, tenant_a: TenantHandle
) -> None:
    created = await make_endpoint(client, tenant_a)
    path = f"/api/webhook-endpoints/{created['id']}"

    disabled = await client.patch(path, json={"status": "disabled"}, headers=tenant_a.headers)
    assert disabled.status_code == 200, disabled.text
    assert (disabled.json()["status"], disabled.json()["disabledReason"]) == (
        "disabled",
        "disabled by request",
    )
    # Disabling twice keeps the first reason, and wakes nothing.
    again = await client.patch(path, json={"status": "disabled"}, headers=tenant_a.headers)
    assert again.json() == disabled.json()
    assert await dispatch_jobs(db, created["id"]) == 0

    # Failures the worker counted are forgotten on re-enabling (they would disable it again).
    async with db.write(uuid.UUID(tenant_a.id)) as session:
        stored = await session.get(
            WebhookEndpoint, (uuid.UUID(tenant_a.id), uuid.UUID(created["id"]))
        )
        assert stored is not None
        stored.failed_attempts = 12
        stored.failing_since = stored.created_at
        await session.commit()

    enabled = await client.patch(path, json={"status": "enabled"}, headers=tenant_a.headers)
    assert enabled.status_code == 200, enabled.text
    assert (enabled.json()["status"], enabled.json()["disabledReason"]) == ("enabled", None)
    stored = await stored_endpoint(db, tenant_a, created["id"])
    assert (stored.failed_attempts, stored.failing_since) == (0, None)
    # Its pending deliveries resume: a dispatch of the endpoint is queued.
    assert await dispatch_jobs(db, created["id"]) == 1
    # Enabling an enabled endpoint changes nothing and queues nothing more.
    same = await client.patch(path, json={"status": "enabled"}, headers=tenant_a.headers)
    assert same.json() == enabled.json()
    assert await dispatch_jobs(db, created["id"]) == 1


async def test_a_failed_patch_changes_nothing(
    client: httpx.AsyncClient, tenant_a: TenantHandle
) -> None:
    created = await make_endpoint(client, tenant_a, description="kept")
    path = f"/api/webhook-endpoints/{created['id']}"
    response = await client.patch(
        path,
        json={"description": "lost", "url": "https://127.0.0.1/"},
        headers=tenant_a.headers,
    )
    assert_problem(response, 422, "invalid_webhook_url")
    assert (await client.get(path, headers=tenant_a.headers)).json()["description"] == "kept"


async def test_delete(client: httpx.AsyncClient, db: Database, tenant_a: TenantHandle) -> None:
    kept = await make_endpoint(client, tenant_a)
    gone = await make_endpoint(client, tenant_a, enabledEvents=["invoice.*", "payment.*"])
    path = f"/api/webhook-endpoints/{gone['id']}"
    tested = await client.post(f"{path}/test", headers=tenant_a.headers)
    assert tested.status_code == 202, tested.text
    assert len(await deliveries(db, tenant_a, gone["id"])) == 1

    response = await client.delete(path, headers=tenant_a.headers)
    assert response.status_code == 204, response.text
    assert response.content == b""
    for method in ("GET", "DELETE"):
        again = await client.request(method, path, headers=tenant_a.headers)
        assert_problem(again, 404, "webhook_endpoint_not_found")
    assert await subscriptions(db, tenant_a, gone["id"]) == set()
    assert await deliveries(db, tenant_a, gone["id"]) == []
    listed = await client.get("/api/webhook-endpoints", headers=tenant_a.headers)
    assert [e["id"] for e in listed.json()["data"]] == [kept["id"]]
    assert await subscriptions(db, tenant_a, kept["id"]) == {"invoice.paid"}
