"""PATCH /api/tenants/{id} `{rateLimit}`: the admin sets a tenant's own budget (API.md "Rate
limits"); how the budget then limits requests is tests/platform/test_rate_limits.py's."""

import uuid
from typing import Any

import httpx
import pytest

from tests.conftest import TenantHandle
from tests.problems import assert_problem, error_fields


async def patch(
    client: httpx.AsyncClient, headers: dict[str, str], tenant_id: str, body: Any
) -> httpx.Response:
    return await client.patch(f"/api/tenants/{tenant_id}", json=body, headers=headers)


async def test_the_admin_sets_a_budget_and_null_restores_the_default(
    client: httpx.AsyncClient, admin: dict[str, str], tenant_a: TenantHandle
) -> None:
    response = await patch(client, admin, tenant_a.id, {"rateLimit": "400/second"})
    assert response.status_code == 200, response.text
    assert response.json()["rateLimit"] == "400/second"
    assert response.json()["name"] == "Acme"

    fetched = await client.get(f"/api/tenants/{tenant_a.id}", headers=admin)
    assert fetched.json()["rateLimit"] == "400/second"
    listed = await client.get("/api/tenants", headers=admin)
    assert [t["rateLimit"] for t in listed.json()["data"]] == ["400/second"]

    response = await patch(client, admin, tenant_a.id, {"rateLimit": "6000/minute"})
    assert response.json()["rateLimit"] == "6000/minute"
    # Fields not sent stay as they are.
    response = await patch(client, admin, tenant_a.id, {})
    assert response.status_code == 200, response.text
    assert response.json()["rateLimit"] == "6000/minute"

    response = await patch(client, admin, tenant_a.id, {"rateLimit": None})
    assert response.status_code == 200, response.text
    assert response.json()["rateLimit"] is None
    fetched = await client.get(f"/api/tenants/{tenant_a.id}", headers=admin)
    assert fetched.json()["rateLimit"] is None


@pytest.mark.parametrize(
    "value",
    [
        "abc",
        "0/second",
        "-1/second",
        "10/hour",
        "10/day",
        "10/seconds",
        "1.5/second",
        "10 per second",
        "10/second;20/minute",
        "",
        "1000000000/second",
        10,
        True,
    ],
)
async def test_anything_but_n_per_second_or_minute_is_refused(
    client: httpx.AsyncClient, admin: dict[str, str], tenant_a: TenantHandle, value: Any
) -> None:
    response = await patch(client, admin, tenant_a.id, {"rateLimit": value})
    problem = assert_problem(response, 422, "validation_failed")
    assert error_fields(problem) == {"rateLimit"}
    fetched = await client.get(f"/api/tenants/{tenant_a.id}", headers=admin)
    assert fetched.json()["rateLimit"] is None


@pytest.mark.parametrize("body", [{"rate_limit": "5/second"}, {"nickname": "x"}, []])
async def test_unknown_fields_are_refused(
    client: httpx.AsyncClient, admin: dict[str, str], tenant_a: TenantHandle, body: Any
) -> None:
    response = await patch(client, admin, tenant_a.id, body)
    assert_problem(response, 422, "validation_failed")


async def test_an_unknown_tenant_is_not_found(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    response = await patch(client, admin, str(uuid.uuid4()), {"rateLimit": "5/second"})
    assert_problem(response, 404, "tenant_not_found")


async def test_a_tenant_key_may_not_set_its_own_budget(
    client: httpx.AsyncClient, admin: dict[str, str], tenant_a: TenantHandle
) -> None:
    response = await patch(client, tenant_a.headers, tenant_a.id, {"rateLimit": "9/second"})
    assert_problem(response, 403, "admin_required")
    fetched = await client.get(f"/api/tenants/{tenant_a.id}", headers=admin)
    assert fetched.json()["rateLimit"] is None
