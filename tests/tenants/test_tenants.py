import uuid
from typing import Any

import httpx
import pytest

from tests.conftest import TenantHandle
from tests.problems import assert_problem, error_fields


async def create(client: httpx.AsyncClient, admin: dict[str, str], **body: Any) -> httpx.Response:
    return await client.post("/api/tenants", json=body, headers=admin)


async def test_create_applies_documented_defaults(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    response = await create(client, admin, name="Initech")
    assert response.status_code == 201, response.text
    tenant = response.json()
    assert tenant["name"] == "Initech"
    assert tenant["defaultCurrency"] == "USD"
    assert tenant["invoicePrefix"] == "INV"
    assert tenant["defaultTaxRate"] == "0"
    assert uuid.UUID(tenant["id"])
    assert tenant["createdAt"].endswith("Z") or tenant["createdAt"].endswith("+00:00")


async def test_create_with_every_field(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    response = await create(
        client,
        admin,
        name="  Umbrella  ",
        defaultCurrency="jpy",
        invoicePrefix="UMB_2",
        defaultTaxRate="12.5",
    )
    assert response.status_code == 201, response.text
    tenant = response.json()
    # Input is trimmed and the currency code normalized, so stored values compare cleanly.
    assert tenant["name"] == "Umbrella"
    assert tenant["defaultCurrency"] == "JPY"
    assert tenant["invoicePrefix"] == "UMB_2"
    assert tenant["defaultTaxRate"] == "12.5"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": ""}, "name"),
        ({"name": "   "}, "name"),
        ({"name": "x" * 201}, "name"),
        ({}, "name"),
        ({"name": "T", "defaultCurrency": "ZZZ"}, "defaultCurrency"),
        ({"name": "T", "defaultCurrency": 840}, "defaultCurrency"),
        ({"name": "T", "invoicePrefix": ""}, "invoicePrefix"),
        ({"name": "T", "invoicePrefix": "IN V"}, "invoicePrefix"),
        ({"name": "T", "invoicePrefix": "-INV"}, "invoicePrefix"),
        ({"name": "T", "invoicePrefix": "P" * 21}, "invoicePrefix"),
        ({"name": "T", "defaultTaxRate": "101"}, "defaultTaxRate"),
        ({"name": "T", "defaultTaxRate": 101}, "defaultTaxRate"),
        ({"name": "T", "defaultTaxRate": "-1"}, "defaultTaxRate"),
        ({"name": "T", "defaultTaxRate": "1.00001"}, "defaultTaxRate"),
        ({"name": "T", "default_currency": "EUR"}, "default_currency"),
        ({"name": "T", "plan": "gold"}, "plan"),
    ],
)
async def test_create_rejects_invalid_input(
    client: httpx.AsyncClient, admin: dict[str, str], body: dict[str, Any], field: str
) -> None:
    response = await client.post("/api/tenants", json=body, headers=admin)
    problem = assert_problem(response, 422, "validation_failed")
    assert field in error_fields(problem)

    listed = await client.get("/api/tenants", headers=admin)
    assert listed.json()["data"] == []


async def test_get_returns_what_create_returned(
    client: httpx.AsyncClient, admin: dict[str, str], tenant_b: TenantHandle
) -> None:
    response = await client.get(f"/api/tenants/{tenant_b.id}", headers=admin)
    assert response.status_code == 200, response.text
    tenant = response.json()
    assert tenant["id"] == tenant_b.id
    assert (tenant["name"], tenant["defaultCurrency"], tenant["invoicePrefix"]) == (
        "Globex",
        "EUR",
        "GLX",
    )
    assert set(tenant) == {
        "id",
        "name",
        "defaultCurrency",
        "invoicePrefix",
        "defaultTaxRate",
        "rateLimit",
        "createdAt",
        "updatedAt",
    }
    assert tenant["rateLimit"] is None  # the default budget


async def test_unknown_tenant_is_404(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    response = await client.get(f"/api/tenants/{uuid.uuid4()}", headers=admin)
    assert_problem(response, 404, "tenant_not_found")


async def test_malformed_tenant_id_is_404(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    response = await client.get("/api/tenants/not-a-uuid", headers=admin)
    assert_problem(response, 404, "not_found")


async def test_list_paginates_newest_first(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    names = [f"Tenant {n}" for n in range(5)]
    for name in names:
        assert (await create(client, admin, name=name)).status_code == 201

    first = await client.get("/api/tenants", params={"pageSize": 2}, headers=admin)
    assert first.status_code == 200, first.text
    body = first.json()
    assert set(body) == {"data", "pagination"}
    assert body["pagination"] == {"page": 1, "pageSize": 2, "hasMore": True}
    assert [t["name"] for t in body["data"]] == ["Tenant 4", "Tenant 3"]

    last = await client.get(
        "/api/tenants", params={"page": 3, "pageSize": 2, "includeTotal": "true"}, headers=admin
    )
    assert last.json()["pagination"] == {
        "page": 3,
        "pageSize": 2,
        "hasMore": False,
        "totalCount": 5,
    }
    assert [t["name"] for t in last.json()["data"]] == ["Tenant 0"]


async def test_list_walks_every_tenant_by_cursor(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    created = [(await create(client, admin, name=f"C{n}")).json()["id"] for n in range(5)]
    seen: list[str] = []
    params: dict[str, Any] = {"limit": 2}
    for _ in range(5):
        page = (await client.get("/api/tenants", params=params, headers=admin)).json()
        seen += [t["id"] for t in page["data"]]
        assert page["pagination"]["limit"] == 2
        if not page["pagination"]["hasMore"]:
            assert page["pagination"]["nextCursor"] is None
            break
        params = {"limit": 2, "cursor": page["pagination"]["nextCursor"]}
    assert seen == created[::-1]


@pytest.mark.parametrize(
    "params",
    [{"pageSize": 0}, {"pageSize": 101}, {"page": 0}, {"page": 1, "cursor": "abc"}],
)
async def test_list_rejects_bad_pagination(
    client: httpx.AsyncClient, admin: dict[str, str], params: dict[str, Any]
) -> None:
    response = await client.get("/api/tenants", params=params, headers=admin)
    assert_problem(response, 422, "validation_failed")
