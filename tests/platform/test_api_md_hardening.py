"""The hardening rules of API.md, tried from the contract's text alone over a real socket.

Like tests/gateway/test_api_md_client.py, nothing of the service's own code is used: each
request and expectation comes from API.md (Conventions, Pagination, Idempotency), tried
as an integrator would and as an attacker would.
"""

import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from tests.conftest import ADMIN_KEY
from tests.gateway.test_api_md_client import ITEMS, created, ok, problem
from tests.live import LiveServer, live_server

ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}"}


@pytest.fixture
async def server(settings: Any, db: Any, event_handlers: Any) -> AsyncIterator[LiveServer]:
    async with live_server(settings, db, event_handlers, gateway_latency_ms=0) as live:
        yield live


def bearer(key: str, **headers: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}", **headers}


async def new_tenant(http: httpx.AsyncClient, name: str) -> str:
    tenant = created(await http.post("/api/tenants", json={"name": name}, headers=ADMIN))
    return str(tenant["id"])


async def new_key(http: httpx.AsyncClient, tenant_id: str) -> str:
    path = f"/api/tenants/{tenant_id}/api-keys"
    key = created(await http.post(path, json={"name": "backend"}, headers=ADMIN))
    return str(key["key"])


async def keys_of(http: httpx.AsyncClient, tenant_id: str) -> list[dict[str, Any]]:
    path = f"/api/tenants/{tenant_id}/api-keys"
    listed: list[dict[str, Any]] = ok(await http.get(path, headers=ADMIN))["data"]
    return listed


async def customers_of(http: httpx.AsyncClient, key: str) -> list[dict[str, Any]]:
    listed = ok(await http.get("/api/customers?pageSize=100", headers=bearer(key)))
    data: list[dict[str, Any]] = listed["data"]
    return data


async def test_a_tenant_never_receives_the_answer_of_a_request_it_could_not_make(
    server: LiveServer,
) -> None:
    http = server.client
    tenant_a, tenant_b = await new_tenant(http, "A"), await new_tenant(http, "B")
    key_a = await new_key(http, tenant_a)
    await new_key(http, tenant_b)
    idempotency = {"Idempotency-Key": "shared-" + uuid.uuid4().hex}

    # The admin, with A named in X-Tenant-Id, creates a key for B.
    admin_answer = await http.post(
        f"/api/tenants/{tenant_b}/api-keys",
        json={"name": "ops"},
        headers={**ADMIN, "X-Tenant-Id": tenant_a, **idempotency},
    )
    b_key = created(admin_answer)["key"]

    # A's own key, with the same Idempotency-Key and the same request, gets no key of B's.
    attempt = await http.post(
        f"/api/tenants/{tenant_b}/api-keys",
        json={"name": "ops"},
        headers=bearer(key_a, **idempotency),
    )
    assert attempt.status_code in (401, 403), attempt.text
    assert b_key not in attempt.text
    assert "tv_sk_" not in attempt.text
    assert attempt.headers.get("idempotent-replayed") is None
    assert len(await keys_of(http, tenant_b)) == 2

    # Even the admin's own retry cannot have the secret again: it was never stored.
    retry = await http.post(
        f"/api/tenants/{tenant_b}/api-keys",
        json={"name": "ops"},
        headers={**ADMIN, "X-Tenant-Id": tenant_a, **idempotency},
    )
    problem(retry, 409, "idempotency_key_secret_not_replayable")
    assert "tv_sk_" not in retry.text
    assert len(await keys_of(http, tenant_b)) == 2


async def test_keys_belong_to_the_credential_not_to_the_tenant(server: LiveServer) -> None:
    http = server.client
    tenant = await new_tenant(http, "One tenant, three credentials")
    first, second = await new_key(http, tenant), await new_key(http, tenant)
    idempotency = {"Idempotency-Key": "order-" + uuid.uuid4().hex}
    body = {"name": "Ada", "email": "ada@example.com"}
    credentials = [
        bearer(first, **idempotency),
        bearer(second, **idempotency),
        {**ADMIN, "X-Tenant-Id": tenant, **idempotency},
    ]

    answers = [await http.post("/api/customers", json=body, headers=h) for h in credentials]
    ids = [created(answer)["id"] for answer in answers]
    assert len(set(ids)) == 3
    assert all(answer.headers.get("idempotent-replayed") is None for answer in answers)

    # Each credential's retry replays its own answer, and only its own.
    for headers, first_id in zip(credentials, ids, strict=True):
        again = await http.post("/api/customers", json=body, headers=headers)
        assert again.status_code == 201
        assert again.headers["idempotent-replayed"] == "true"
        assert again.json()["id"] == first_id
    assert len(await customers_of(http, first)) == 3


async def test_a_retry_after_the_answer_always_replays(server: LiveServer) -> None:
    http = server.client
    key = await new_key(http, await new_tenant(http, "Retries"))
    for n in range(30):
        headers = bearer(key, **{"Idempotency-Key": f"retry-{n}-{uuid.uuid4().hex}"})
        body = {"name": f"Customer {n}", "email": f"c{n}@example.com"}
        first = created(await http.post("/api/customers", json=body, headers=headers))
        again = await http.post("/api/customers", json=body, headers=headers)
        assert again.status_code == 201, (n, again.text)
        assert again.headers["idempotent-replayed"] == "true"
        assert again.json() == first
    assert len(await customers_of(http, key)) == 30


NUL = "\u0000"


async def test_no_string_may_hold_a_nul_character(server: LiveServer) -> None:
    http = server.client
    key = await new_key(http, await new_tenant(http, "NUL"))
    auth = bearer(key)
    customer = created(
        await http.post(
            "/api/customers", json={"name": "Ada", "email": "ada@example.com"}, headers=auth
        )
    )
    bodies: list[tuple[str, dict[str, Any]]] = [
        ("/api/customers", {"name": f"A{NUL}da", "email": "a@example.com"}),
        ("/api/customers", {"name": "Ada", "email": f"a{NUL}@example.com"}),
        ("/api/customers", {"name": "Ada", "email": "a@example.com", "phone": NUL}),
        ("/api/customers", {"name": "Ada", "email": "a@example.com", "metadata": {"k": NUL}}),
        ("/api/customers", {"name": "Ada", "email": "a@example.com", "metadata": {NUL: "v"}}),
        (
            "/api/invoices",
            {
                "customerId": customer["id"],
                "items": [{"description": f"Con{NUL}sulting", "quantity": 1, "unitPrice": "1"}],
            },
        ),
        ("/api/invoices", {"customerId": customer["id"], "items": ITEMS, "memo": f"m{NUL}"}),
    ]
    for path, body in bodies:
        answer = await http.post(path, json=body, headers=auth)
        problem(answer, 422, "validation_failed")
    patched = await http.patch(
        f"/api/customers/{customer['id']}", json={"name": f"B{NUL}"}, headers=auth
    )
    problem(patched, 422, "validation_failed")

    queries = [{"search": f"a{NUL}b"}, {"cursor": NUL}, {"customerId": NUL}, {"currency": NUL}]
    for params in queries:
        listed = await http.get("/api/invoices", params=params, headers=auth)
        problem(listed, 422, "validation_failed")
    searched = await http.get("/api/customers", params={"search": NUL}, headers=auth)
    problem(searched, 422, "validation_failed")
    by_path = await http.get(f"/api/customers/{customer['id']}%00", headers=auth)
    assert by_path.status_code in (404, 422), by_path.text
    assert by_path.headers["content-type"].startswith("application/problem+json")

    # Nothing was stored along the way.
    assert [c["name"] for c in await customers_of(http, key)] == ["Ada"]
    invoices = ok(await http.get("/api/invoices", headers=auth))
    assert invoices["data"] == []


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity", "1e999999"])
async def test_json_must_be_strict(server: LiveServer, literal: str) -> None:
    http = server.client
    key = await new_key(http, await new_tenant(http, "Strict JSON"))
    auth = {**bearer(key), "Content-Type": "application/json"}
    customer = created(
        await http.post(
            "/api/customers", json={"name": "Ada", "email": "ada@example.com"}, headers=auth
        )
    )
    # Written as text: a JSON encoder would refuse to produce these literals.
    item = '{"description": "x", "quantity": 1, "unitPrice": ' + literal + "}"
    body = '{"customerId": "' + customer["id"] + '", "items": [' + item + "]}"
    answer = await http.post("/api/invoices", content=body, headers=auth)
    problem(answer, 400, "malformed_json")
    metadata = '{"name": "Ada", "email": "b@example.com", "metadata": {"n": ' + literal + "}}"
    problem(
        await http.post("/api/customers", content=metadata, headers=auth), 400, "malformed_json"
    )
    assert ok(await http.get("/api/invoices", headers=auth))["data"] == []
    assert len(await customers_of(http, key)) == 1


async def test_offset_pages_stop_at_row_ten_thousand(server: LiveServer) -> None:
    http = server.client
    auth = bearer(await new_key(http, await new_tenant(http, "Deep pages")))
    assert ok(await http.get("/api/invoices?page=100&pageSize=100", headers=auth))["data"] == []
    deep = await http.get("/api/invoices?page=101&pageSize=100", headers=auth)
    assert "cursor" in problem(deep, 422, "offset_too_deep")["detail"]
    problem(await http.get("/api/customers?page=10001", headers=auth), 422, "offset_too_deep")
    both = await http.get("/api/invoices?page=2&cursor=abc", headers=auth)
    problem(both, 422, "validation_failed")
