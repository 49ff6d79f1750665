import re
import uuid
from typing import Any

import httpx
from sqlalchemy import text

from tenvoice.platform.db import Database
from tests.conftest import TenantHandle
from tests.problems import assert_problem

URL_SAFE = re.compile(r"^[A-Za-z0-9_-]+$")


async def create_key(
    client: httpx.AsyncClient, admin: dict[str, str], tenant_id: str, name: str = "ci"
) -> dict[str, Any]:
    response = await client.post(
        f"/api/tenants/{tenant_id}/api-keys", json={"name": name}, headers=admin
    )
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def test_created_key_is_shown_once_with_its_prefix(
    client: httpx.AsyncClient, admin: dict[str, str], tenant_a: TenantHandle
) -> None:
    created = await create_key(client, admin, tenant_a.id, "billing-bot")
    assert set(created) >= {"id", "name", "key", "prefix", "createdAt"}
    assert created["name"] == "billing-bot"
    key: str = created["key"]
    assert key.startswith("tv_sk_")
    secret = key.removeprefix("tv_sk_")
    assert len(secret) >= 32
    assert URL_SAFE.match(secret), key
    assert key.startswith(created["prefix"])
    # The prefix identifies a key in a list; it must not be most of the secret.
    assert len(created["prefix"]) < len(key) - 32

    other = await create_key(client, admin, tenant_a.id)
    assert other["key"] != key

    response = await client.get("/api/customers", headers={"Authorization": f"Bearer {key}"})
    assert response.status_code == 200, response.text


async def test_list_never_contains_the_key(
    client: httpx.AsyncClient, admin: dict[str, str], tenant_a: TenantHandle
) -> None:
    second = await create_key(client, admin, tenant_a.id, "second")
    response = await client.get(f"/api/tenants/{tenant_a.id}/api-keys", headers=admin)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["pagination"] == {"page": 1, "pageSize": 10, "hasMore": False}
    assert [k["id"] for k in body["data"]] == [second["id"], tenant_a.key_id]
    for listed in body["data"]:
        assert "key" not in listed
        assert "keyHash" not in listed
    assert second["key"] not in response.text
    assert tenant_a.key not in response.text
    assert body["data"][0]["prefix"] == second["prefix"]
    assert body["data"][0]["revokedAt"] is None


async def test_list_holds_only_that_tenants_keys(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    tenant_a: TenantHandle,
    tenant_b: TenantHandle,
) -> None:
    response = await client.get(f"/api/tenants/{tenant_b.id}/api-keys", headers=admin)
    assert [k["id"] for k in response.json()["data"]] == [tenant_b.key_id]


async def test_key_is_stored_only_as_a_hash(
    client: httpx.AsyncClient, admin: dict[str, str], tenant_a: TenantHandle, db: Database
) -> None:
    created = await create_key(client, admin, tenant_a.id)
    secret = created["key"].removeprefix("tv_sk_")
    async with db.read() as session:
        rows = (await session.execute(text("SELECT * FROM api_keys"))).mappings().all()
    assert len(rows) == 2
    # SQLite hands UUIDs back as bare hex, PostgreSQL as UUID objects.
    ids = {str(uuid.UUID(str(row["id"]))) for row in rows}
    assert ids == {created["id"], tenant_a.key_id}
    for row in rows:
        for column, value in row.items():
            # The secret part, not the whole key: a stored truncation would leak as much.
            assert secret[:16] not in str(value), column
            assert tenant_a.key.removeprefix("tv_sk_")[:16] not in str(value), column


async def test_key_for_unknown_tenant_is_404(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    response = await client.post(
        f"/api/tenants/{uuid.uuid4()}/api-keys", json={"name": "x"}, headers=admin
    )
    assert_problem(response, 404, "tenant_not_found")
    listed = await client.get(f"/api/tenants/{uuid.uuid4()}/api-keys", headers=admin)
    assert_problem(listed, 404, "tenant_not_found")


async def test_key_name_is_validated(
    client: httpx.AsyncClient, admin: dict[str, str], tenant_a: TenantHandle
) -> None:
    for body in ({}, {"name": ""}, {"name": "x", "scope": "all"}):
        response = await client.post(
            f"/api/tenants/{tenant_a.id}/api-keys", json=body, headers=admin
        )
        assert_problem(response, 422, "validation_failed")


async def test_revoked_key_is_refused(
    client: httpx.AsyncClient, admin: dict[str, str], tenant_a: TenantHandle
) -> None:
    spare = await create_key(client, admin, tenant_a.id, "spare")
    response = await client.delete(
        f"/api/tenants/{tenant_a.id}/api-keys/{tenant_a.key_id}", headers=admin
    )
    assert response.status_code == 204, response.text
    assert response.content == b""

    refused = await client.get("/api/customers", headers=tenant_a.headers)
    assert_problem(refused, 401, "invalid_api_key")
    assert refused.headers["www-authenticate"] == "Bearer"

    # Only the revoked key stops working.
    still = await client.get("/api/customers", headers={"Authorization": f"Bearer {spare['key']}"})
    assert still.status_code == 200, still.text

    listed = await client.get(f"/api/tenants/{tenant_a.id}/api-keys", headers=admin)
    revoked = {k["id"]: k["revokedAt"] for k in listed.json()["data"]}
    assert revoked[tenant_a.key_id] is not None
    assert revoked[spare["id"]] is None


async def test_revoking_twice_keeps_it_revoked(
    client: httpx.AsyncClient, admin: dict[str, str], tenant_a: TenantHandle
) -> None:
    path = f"/api/tenants/{tenant_a.id}/api-keys/{tenant_a.key_id}"
    assert (await client.delete(path, headers=admin)).status_code == 204
    assert (await client.delete(path, headers=admin)).status_code == 204
    refused = await client.get("/api/customers", headers=tenant_a.headers)
    assert_problem(refused, 401, "invalid_api_key")


async def test_revoking_an_unknown_key_is_404(
    client: httpx.AsyncClient, admin: dict[str, str], tenant_a: TenantHandle
) -> None:
    response = await client.delete(
        f"/api/tenants/{tenant_a.id}/api-keys/{uuid.uuid4()}", headers=admin
    )
    assert_problem(response, 404, "api_key_not_found")


async def test_a_key_is_revoked_only_under_its_own_tenant(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    tenant_a: TenantHandle,
    tenant_b: TenantHandle,
) -> None:
    response = await client.delete(
        f"/api/tenants/{tenant_a.id}/api-keys/{tenant_b.key_id}", headers=admin
    )
    assert_problem(response, 404, "api_key_not_found")
    still = await client.get("/api/customers", headers=tenant_b.headers)
    assert still.status_code == 200, still.text
