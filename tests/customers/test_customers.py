import uuid
from datetime import datetime
from typing import Any

import httpx
import pytest

from tests.conftest import TenantHandle, make_customer
from tests.problems import assert_problem, error_fields

FULL = {
    "name": "Grace Hopper",
    "email": "grace@navy.example.com",
    "phone": "+1 555 0100",
    "address": {"line1": "1 Main St", "city": "Arlington", "postalCode": "22201", "country": "US"},
    "metadata": {"crm": "42"},
}


def parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value)


async def test_create_and_get(client: httpx.AsyncClient, tenant_a: TenantHandle) -> None:
    response = await client.post("/api/customers", json=FULL, headers=tenant_a.headers)
    assert response.status_code == 201, response.text
    created = response.json()
    assert uuid.UUID(created["id"])
    assert created["name"] == "Grace Hopper"
    assert created["email"] == "grace@navy.example.com"
    assert created["phone"] == "+1 555 0100"
    assert created["address"]["postalCode"] == "22201"
    assert created["address"]["country"] == "US"
    assert created["metadata"] == {"crm": "42"}
    assert created["createdAt"].endswith("Z")

    fetched = await client.get(f"/api/customers/{created['id']}", headers=tenant_a.headers)
    assert fetched.status_code == 200, fetched.text
    assert fetched.json() == created


async def test_create_with_only_required_fields(
    client: httpx.AsyncClient, tenant_a: TenantHandle
) -> None:
    body = {"name": "Min", "email": "min@example.com"}
    response = await client.post("/api/customers", json=body, headers=tenant_a.headers)
    assert response.status_code == 201, response.text
    created = response.json()
    assert (created["phone"], created["address"], created["metadata"]) == (None, None, {})


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"email": "not-an-email"}, "email"),
        ({"email": "a@"}, "email"),
        ({"email": None}, "email"),
        ({"name": ""}, "name"),
        ({"name": None}, "name"),
        ({"phone": "1" * 41}, "phone"),
        ({"address": {"country": "usa"}}, "address.country"),
        ({"address": {"postal_code": "1"}}, "address.postal_code"),
        ({"address": {"zip": "1"}}, "address.zip"),
        ({"created_at": "2026-01-01T00:00:00Z"}, "created_at"),
        ({"tenantId": str(uuid.uuid4())}, "tenantId"),
        ({"metadata": {f"k{n}": "v" for n in range(51)}}, "metadata"),
        ({"metadata": {"k": "v" * 501}}, "metadata.k"),
        ({"metadata": {"k": None}}, "metadata.k"),
        ({"metadata": {"k": {"nested": "v"}}}, "metadata.k"),
    ],
)
async def test_create_rejects_invalid_input(
    client: httpx.AsyncClient, tenant_a: TenantHandle, change: dict[str, Any], field: str
) -> None:
    body = {"name": "Valid", "email": "valid@example.com", **change}
    response = await client.post("/api/customers", json=body, headers=tenant_a.headers)
    problem = assert_problem(response, 422, "validation_failed")
    assert field in error_fields(problem), problem["errors"]
    for error in problem["errors"]:
        assert error["message"]

    listed = await client.get("/api/customers", headers=tenant_a.headers)
    assert listed.json()["data"] == []


async def test_metadata_of_exactly_fifty_keys_is_accepted(
    client: httpx.AsyncClient, tenant_a: TenantHandle
) -> None:
    metadata = {f"k{n}": "v" for n in range(50)}
    customer = await make_customer(client, tenant_a, metadata=metadata)
    assert customer["metadata"] == metadata


async def test_unknown_customer_is_404(client: httpx.AsyncClient, tenant_a: TenantHandle) -> None:
    missing = uuid.uuid4()
    for method in ("GET", "DELETE"):
        response = await client.request(
            method, f"/api/customers/{missing}", headers=tenant_a.headers
        )
        assert_problem(response, 404, "customer_not_found")
    patched = await client.patch(
        f"/api/customers/{missing}", json={"name": "X"}, headers=tenant_a.headers
    )
    assert_problem(patched, 404, "customer_not_found")
    malformed = await client.get("/api/customers/42", headers=tenant_a.headers)
    assert_problem(malformed, 404, "not_found")


async def test_patch_changes_only_what_is_sent(
    client: httpx.AsyncClient, tenant_a: TenantHandle
) -> None:
    created = (await client.post("/api/customers", json=FULL, headers=tenant_a.headers)).json()
    response = await client.patch(
        f"/api/customers/{created['id']}",
        json={"name": "Rear Admiral Hopper", "metadata": {"crm": "43", "tier": "gold"}},
        headers=tenant_a.headers,
    )
    assert response.status_code == 200, response.text
    patched = response.json()
    assert patched["name"] == "Rear Admiral Hopper"
    assert patched["metadata"] == {"crm": "43", "tier": "gold"}
    for unchanged in ("id", "email", "phone", "address", "createdAt"):
        assert patched[unchanged] == created[unchanged], unchanged
    assert parse_time(patched["updatedAt"]) > parse_time(created["updatedAt"])

    fetched = await client.get(f"/api/customers/{created['id']}", headers=tenant_a.headers)
    assert fetched.json() == patched


async def test_patch_with_nothing_to_change_keeps_it(
    client: httpx.AsyncClient, tenant_a: TenantHandle
) -> None:
    created = await make_customer(client, tenant_a)
    response = await client.patch(
        f"/api/customers/{created['id']}", json={}, headers=tenant_a.headers
    )
    assert response.status_code == 200, response.text
    assert response.json() == created


async def test_patch_null_clears_metadata(
    client: httpx.AsyncClient, tenant_a: TenantHandle
) -> None:
    created = await make_customer(client, tenant_a, metadata={"crm": "42"})
    url = f"/api/customers/{created['id']}"
    response = await client.patch(url, json={"metadata": None}, headers=tenant_a.headers)
    assert response.status_code == 200, response.text
    assert response.json()["metadata"] == {}
    assert (await client.get(url, headers=tenant_a.headers)).json()["metadata"] == {}


async def test_patch_null_clears_phone_and_address(
    client: httpx.AsyncClient, tenant_a: TenantHandle
) -> None:
    created = (await client.post("/api/customers", json=FULL, headers=tenant_a.headers)).json()
    response = await client.patch(
        f"/api/customers/{created['id']}", json={"phone": None}, headers=tenant_a.headers
    )
    assert response.status_code == 200, response.text
    assert response.json()["phone"] is None
    assert response.json()["address"] == created["address"]

    response = await client.patch(
        f"/api/customers/{created['id']}", json={"address": None}, headers=tenant_a.headers
    )
    assert response.json()["address"] is None
    fetched = await client.get(f"/api/customers/{created['id']}", headers=tenant_a.headers)
    assert (fetched.json()["phone"], fetched.json()["address"]) == (None, None)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": None}, "name"),
        ({"email": None}, "email"),
        ({"email": "nope"}, "email"),
        ({"name": ""}, "name"),
        ({"nickname": "G"}, "nickname"),
        ({"deleted_at": None}, "deleted_at"),
        ({"metadata": {f"k{n}": "v" for n in range(51)}}, "metadata"),
    ],
)
async def test_patch_rejects_invalid_input(
    client: httpx.AsyncClient, tenant_a: TenantHandle, body: dict[str, Any], field: str
) -> None:
    created = await make_customer(client, tenant_a)
    response = await client.patch(
        f"/api/customers/{created['id']}", json=body, headers=tenant_a.headers
    )
    problem = assert_problem(response, 422, "validation_failed")
    assert field in error_fields(problem), problem["errors"]
    fetched = await client.get(f"/api/customers/{created['id']}", headers=tenant_a.headers)
    assert fetched.json() == created


async def test_list_is_paginated_newest_first(
    client: httpx.AsyncClient, tenant_a: TenantHandle
) -> None:
    ids = [(await make_customer(client, tenant_a, f"C{n}"))["id"] for n in range(3)]
    response = await client.get(
        "/api/customers", params={"pageSize": 2, "includeTotal": "true"}, headers=tenant_a.headers
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["pagination"] == {"page": 1, "pageSize": 2, "hasMore": True, "totalCount": 3}
    assert [c["id"] for c in body["data"]] == ids[:0:-1]

    second = await client.get(
        "/api/customers", params={"page": 2, "pageSize": 2}, headers=tenant_a.headers
    )
    assert second.json()["pagination"] == {"page": 2, "pageSize": 2, "hasMore": False}
    assert [c["id"] for c in second.json()["data"]] == ids[:1]

    cursor = await client.get("/api/customers", params={"limit": 2}, headers=tenant_a.headers)
    pagination = cursor.json()["pagination"]
    assert pagination["hasMore"] is True
    rest = await client.get(
        "/api/customers",
        params={"limit": 2, "cursor": pagination["nextCursor"]},
        headers=tenant_a.headers,
    )
    assert [c["id"] for c in rest.json()["data"]] == ids[:1]
    assert rest.json()["pagination"] == {"limit": 2, "hasMore": False, "nextCursor": None}


async def test_search_matches_name_and_email_ignoring_case(
    client: httpx.AsyncClient, tenant_a: TenantHandle
) -> None:
    ada = await make_customer(client, tenant_a, "Ada Lovelace", email="ada@analytical.example")
    alan = await make_customer(client, tenant_a, "Alan Turing", email="ALAN@bletchley.example")
    grace = await make_customer(client, tenant_a, "Grace Hopper", email="grace@navy.example")

    async def search(term: str) -> set[str]:
        response = await client.get(
            "/api/customers", params={"search": term}, headers=tenant_a.headers
        )
        assert response.status_code == 200, response.text
        return {c["id"] for c in response.json()["data"]}

    assert await search("lovelace") == {ada["id"]}
    assert await search("TURING") == {alan["id"]}
    assert await search("Bletchley") == {alan["id"]}
    assert await search("alan@") == {alan["id"]}
    assert await search("a") == {ada["id"], alan["id"], grace["id"]}
    assert await search("nobody") == set()


async def test_search_takes_wildcards_literally(
    client: httpx.AsyncClient, tenant_a: TenantHandle
) -> None:
    await make_customer(client, tenant_a, "100% Pure")
    await make_customer(client, tenant_a, "Plain")
    await make_customer(client, tenant_a, "A_B")
    for term, expected in (("%", {"100% Pure"}), ("0%", {"100% Pure"}), ("_", {"A_B"})):
        response = await client.get(
            "/api/customers", params={"search": term}, headers=tenant_a.headers
        )
        assert {c["name"] for c in response.json()["data"]} == expected, term


async def test_search_must_not_be_empty(client: httpx.AsyncClient, tenant_a: TenantHandle) -> None:
    response = await client.get("/api/customers", params={"search": ""}, headers=tenant_a.headers)
    assert_problem(response, 422, "validation_failed")


async def test_customer_timeline_records_each_change(
    client: httpx.AsyncClient, tenant_a: TenantHandle
) -> None:
    customer = await make_customer(client, tenant_a)
    base = f"/api/customers/{customer['id']}"
    await client.patch(base, json={"phone": "+1 555 0100"}, headers=tenant_a.headers)
    # A PATCH that changes nothing records nothing.
    await client.patch(base, json={"name": customer["name"]}, headers=tenant_a.headers)

    events = (await client.get(f"{base}/timeline", headers=tenant_a.headers)).json()["data"]

    assert [e["eventType"] for e in events] == ["customer.created", "customer.updated"]
    assert events[1]["data"]["changed"] == ["phone"]
    assert {e["entityId"] for e in events} == {customer["id"]}
    assert all(e["actor"] == {"type": "api_key", "id": tenant_a.key_id} for e in events)

    await client.delete(base, headers=tenant_a.headers)
    gone = await client.get(f"{base}/timeline", headers=tenant_a.headers)
    assert gone.status_code == 404


async def test_metadata_numbers_and_booleans_become_strings(
    client: httpx.AsyncClient, tenant_a: TenantHandle
) -> None:
    # As Stripe's form encoding does: metadata values are strings.
    customer = await make_customer(client, tenant_a, metadata={"n": 5, "ok": True, "x": 1.5})
    assert customer["metadata"] == {"n": "5", "ok": "true", "x": "1.5"}


@pytest.mark.parametrize(
    "email", ["ada@example.test", "ops@acme.local", "root@localhost", "ünï@exämple.com"]
)
async def test_any_well_formed_email_is_accepted(
    client: httpx.AsyncClient, tenant_a: TenantHandle, email: str
) -> None:
    response = await client.post(
        "/api/customers", json={"name": "Ada", "email": email}, headers=tenant_a.headers
    )
    assert response.status_code == 201, response.text
    assert response.json()["email"] == email
