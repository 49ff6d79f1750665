"""Whose `Idempotency-Key` it is, answers that carry a secret, and when an answer is stored.

API.md, Idempotency: a key belongs to the credential that used it (the API key, or the
admin), never only to the tenant a header names; an answer with a secret shown once is
never stored; an answer is stored before it is sent.
"""

import uuid
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import select
from starlette.types import Message, Receive, Scope, Send

from tenvoice.config import Settings
from tenvoice.platform.db import Database
from tenvoice.platform.idempotency import IdempotencyKey
from tenvoice.platform.messages import EventHandlers
from tests.conftest import TenantHandle, make_tenant
from tests.live import live_server
from tests.platform.test_idempotency import (
    REPLAYED,
    assert_original,
    assert_replay_of,
    customer_body,
    keyed,
    owner_of,
    stored_keys,
    total,
)
from tests.problems import assert_problem

SECRET_PREFIX = b"tv_sk_"


async def api_keys_of(client: httpx.AsyncClient, admin: dict[str, str], tenant_id: str) -> int:
    return await total(client, f"/api/tenants/{tenant_id}/api-keys", admin)


async def second_key(
    client: httpx.AsyncClient, admin: dict[str, str], tenant: TenantHandle
) -> TenantHandle:
    response = await client.post(
        f"/api/tenants/{tenant.id}/api-keys", json={"name": "second"}, headers=admin
    )
    assert response.status_code == 201, response.text
    return TenantHandle(tenant.id, response.json()["key"], response.json()["id"])


async def every_stored_byte(db: Database) -> list[bytes]:
    """Every idempotency row, each column as bytes: where a secret could hide."""
    async with db.lookup(primary=True) as connection:
        rows = (await connection.execute(select(IdempotencyKey.__table__))).all()
    return [
        value if isinstance(value, bytes) else str(value).encode() for row in rows for value in row
    ]


# -- the key belongs to the credential -------------------------------------------------


async def test_a_tenant_key_never_gets_the_answer_the_admin_got_acting_as_its_tenant(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    tenant_a: TenantHandle,
    tenant_b: TenantHandle,
) -> None:
    # The admin, naming tenant A in the header, makes B a new API key with this key.
    path, body = f"/api/tenants/{tenant_b.id}/api-keys", {"name": "ci"}
    as_a = keyed({**admin, "X-Tenant-Id": tenant_a.id}, "shared-key")
    created = await client.post(path, json=body, headers=as_a)
    assert_original(created, 201)

    # A's own key, with the same Idempotency-Key: it runs its own request and is refused.
    mine = await client.post(path, json=body, headers=keyed(tenant_a.headers, "shared-key"))
    assert_problem(mine, 403, "admin_required")
    assert REPLAYED not in mine.headers
    assert created.json()["key"].encode() not in mine.content
    assert await api_keys_of(client, admin, tenant_b.id) == 2

    # Any admin answer, not only one with a secret: A's key may not make the request.
    tenant = await client.post(
        "/api/tenants", json={"name": "Not A's"}, headers=keyed(as_a, "tenant-key")
    )
    assert_original(tenant, 201)
    refused = await client.post(
        "/api/tenants", json={"name": "Not A's"}, headers=keyed(tenant_a.headers, "tenant-key")
    )
    assert_problem(refused, 403, "admin_required")
    assert REPLAYED not in refused.headers


async def test_two_keys_of_one_tenant_do_not_see_each_others_answers(
    client: httpx.AsyncClient, db: Database, admin: dict[str, str], tenant_a: TenantHandle
) -> None:
    other = await second_key(client, admin, tenant_a)
    body = customer_body()

    first = await client.post("/api/customers", json=body, headers=keyed(tenant_a.headers, "k"))
    second = await client.post("/api/customers", json=body, headers=keyed(other.headers, "k"))
    assert_original(first, 201)
    assert_original(second, 201)
    assert first.json()["id"] != second.json()["id"]

    # Each key's retry replays its own answer.
    again = await client.post("/api/customers", json=body, headers=keyed(other.headers, "k"))
    assert_replay_of(again, second)
    again = await client.post("/api/customers", json=body, headers=keyed(tenant_a.headers, "k"))
    assert_replay_of(again, first)
    assert await total(client, "/api/customers", tenant_a.headers) == 2
    assert set(await stored_keys(db, owner_of(other))) == {"k"}


async def test_the_admin_acting_as_a_tenant_and_the_tenants_key_do_not_share_keys(
    client: httpx.AsyncClient, admin: dict[str, str], tenant_a: TenantHandle
) -> None:
    body = customer_body()
    tenants = await client.post("/api/customers", json=body, headers=keyed(tenant_a.headers, "k"))
    assert_original(tenants, 201)

    as_a = keyed({**admin, "X-Tenant-Id": tenant_a.id}, "k")
    admins = await client.post("/api/customers", json=body, headers=as_a)
    assert_original(admins, 201)
    assert admins.json()["id"] != tenants.json()["id"]
    # Another spelling of the same id names the same tenant: the same request, replayed.
    upper = keyed({**admin, "X-Tenant-Id": tenant_a.id.upper()}, "k")
    assert_replay_of(await client.post("/api/customers", json=body, headers=upper), admins)
    again = await client.post("/api/customers", json=body, headers=keyed(tenant_a.headers, "k"))
    assert_replay_of(again, tenants)
    assert await total(client, "/api/customers", tenant_a.headers) == 2


async def test_the_admins_key_for_one_tenant_is_not_replayed_for_another(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    tenant_a: TenantHandle,
    tenant_b: TenantHandle,
) -> None:
    body = customer_body()
    for_a = await client.post(
        "/api/customers", json=body, headers=keyed({**admin, "X-Tenant-Id": tenant_a.id}, "k")
    )
    assert_original(for_a, 201)

    # Same credential, path and body, but another tenant: another request, not a retry.
    for_b = await client.post(
        "/api/customers", json=body, headers=keyed({**admin, "X-Tenant-Id": tenant_b.id}, "k")
    )
    assert_problem(for_b, 422, "idempotency_key_reused")
    assert for_a.json()["id"].encode() not in for_b.content
    assert await total(client, "/api/customers", tenant_b.headers) == 0

    again = await client.post(
        "/api/customers", json=body, headers=keyed({**admin, "X-Tenant-Id": tenant_a.id}, "k")
    )
    assert_replay_of(again, for_a)


# -- secrets shown once ----------------------------------------------------------------


async def test_a_new_api_keys_answer_is_never_stored_and_its_retry_is_refused(
    client: httpx.AsyncClient, db: Database, admin: dict[str, str], tenant_a: TenantHandle
) -> None:
    path, body = f"/api/tenants/{tenant_a.id}/api-keys", {"name": "deploy"}
    headers = keyed(admin, "new-key")

    created = await client.post(path, json=body, headers=headers)
    assert_original(created, 201)
    secret = created.json()["key"]
    assert secret.startswith(SECRET_PREFIX.decode())
    assert not any(SECRET_PREFIX in value for value in await every_stored_byte(db))

    retry = await client.post(path, json=body, headers=headers)
    problem = assert_problem(retry, 409, "idempotency_key_secret_not_replayable")
    assert retry.headers["content-type"] == "application/problem+json"
    assert "shown only once" in problem["detail"]
    assert "list the tenant's API keys" in problem["detail"]
    assert REPLAYED not in retry.headers
    assert SECRET_PREFIX not in retry.content
    # The key is still bound to its request, and nothing ran a second time.
    other = await client.post(path, json={"name": "other"}, headers=headers)
    assert_problem(other, 422, "idempotency_key_reused")
    assert await api_keys_of(client, admin, tenant_a.id) == 2
    # The key the first answer showed works.
    listed = await client.get("/api/customers", headers={"Authorization": f"Bearer {secret}"})
    assert listed.status_code == 200, listed.text
    assert not any(SECRET_PREFIX in value for value in await every_stored_byte(db))


async def test_a_secret_routes_error_answer_is_kept_and_replayed(
    client: httpx.AsyncClient, db: Database, admin: dict[str, str]
) -> None:
    # Only a success carries the secret; a refusal that ran is replayed as any other.
    path = f"/api/tenants/{uuid.uuid4()}/api-keys"
    headers = keyed(admin, "no-such-tenant")
    missing = await client.post(path, json={"name": "x"}, headers=headers)
    assert_problem(missing, 404, "tenant_not_found")
    assert_replay_of(await client.post(path, json={"name": "x"}, headers=headers), missing)


async def test_unmarked_routes_are_still_stored_and_replayed(
    client: httpx.AsyncClient, db: Database, admin: dict[str, str]
) -> None:
    headers = keyed(admin, "tenant")
    created = await client.post("/api/tenants", json={"name": "Umbrella"}, headers=headers)
    assert_original(created, 201)
    assert await stored_keys(db, "admin") == {"tenant": "completed"}
    again = await client.post("/api/tenants", json={"name": "Umbrella"}, headers=headers)
    assert_replay_of(again, created)


# -- stored before sent ----------------------------------------------------------------


async def test_a_retry_sent_the_moment_the_answer_leaves_replays_it(
    app: FastAPI, client: httpx.AsyncClient, tenant_a: TenantHandle
) -> None:
    """The retry starts on the first byte of the first answer; it must already be kept."""
    body = customer_body()
    headers = keyed(tenant_a.headers, "the-moment")
    retries: list[httpx.Response] = []

    async def watched(scope: Scope, receive: Receive, send: Send) -> None:
        async def first_byte_then_retry(message: Message) -> None:
            if message["type"] == "http.response.start" and not retries:
                retries.append(await client.post("/api/customers", json=body, headers=headers))
            await send(message)

        await app(scope, receive, first_byte_then_retry)

    transport = httpx.ASGITransport(app=watched)
    async with httpx.AsyncClient(transport=transport, base_url="http://tenvoice.test") as first:
        original = await first.post("/api/customers", json=body, headers=headers)
    assert_original(original, 201)
    assert len(retries) == 1
    assert_replay_of(retries[0], original)
    assert await total(client, "/api/customers", tenant_a.headers) == 1


PAIRS = 100


async def test_every_immediate_retry_over_a_socket_is_a_replay(
    settings: Settings,
    db: Database,
    event_handlers: EventHandlers,
    admin: dict[str, str],
) -> None:
    async with live_server(settings, db, event_handlers) as live:
        tenant = await make_tenant(live.client, admin, "Socket Co")
        outcomes: list[tuple[int, str | None]] = []
        for pair in range(PAIRS):
            body: dict[str, Any] = customer_body(f"Customer {pair}")
            headers = keyed(tenant.headers, f"pair-{pair}")
            first = await live.client.post("/api/customers", json=body, headers=headers)
            assert_original(first, 201)
            retry = await live.client.post("/api/customers", json=body, headers=headers)
            outcomes.append((retry.status_code, retry.headers.get(REPLAYED)))
            if retry.status_code == 201:
                assert retry.content == first.content
        assert outcomes == [(201, "true")] * PAIRS
        assert await total(live.client, "/api/customers", tenant.headers) == PAIRS
