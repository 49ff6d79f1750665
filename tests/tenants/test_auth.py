import uuid

import httpx
import pytest

from tests.conftest import ADMIN_KEY, TenantHandle, make_customer
from tests.problems import assert_problem

TENANT_ROUTES = ["/api/customers", "/api/invoices"]


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/tenants"),
        ("POST", "/api/tenants"),
        ("GET", "/api/tenants/{tenant}"),
        ("POST", "/api/tenants/{tenant}/api-keys"),
        ("GET", "/api/tenants/{tenant}/api-keys"),
        ("DELETE", "/api/tenants/{tenant}/api-keys/{key}"),
    ],
)
async def test_tenant_management_needs_the_admin_key(
    client: httpx.AsyncClient, tenant_a: TenantHandle, method: str, path: str
) -> None:
    url = path.format(tenant=tenant_a.id, key=tenant_a.key_id)
    body = {"name": "Mine now"} if method == "POST" else None
    response = await client.request(method, url, json=body, headers=tenant_a.headers)
    assert_problem(response, 403, "admin_required")
    # The refused revoke must not have happened.
    assert (await client.get("/api/customers", headers=tenant_a.headers)).status_code == 200


@pytest.mark.parametrize(
    ("authorization", "code"),
    [
        (None, "unauthorized"),
        ("", "unauthorized"),
        ("Bearer", "unauthorized"),
        ("Bearer    ", "unauthorized"),
        (f"Basic {ADMIN_KEY}", "unauthorized"),
        (f"Token {ADMIN_KEY}", "unauthorized"),
        ("Bearer not-a-key", "invalid_api_key"),
        ("Bearer tv_sk_" + "A" * 43, "invalid_api_key"),
        (f"Bearer {ADMIN_KEY}x", "invalid_api_key"),
        (f"Bearer {ADMIN_KEY[:-1]}", "invalid_api_key"),
    ],
)
@pytest.mark.parametrize("path", ["/api/tenants", "/api/customers"])
async def test_missing_or_bad_credentials_are_401(
    client: httpx.AsyncClient, path: str, authorization: str | None, code: str
) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}
    response = await client.get(path, headers=headers)
    assert_problem(response, 401, code)
    assert response.headers["www-authenticate"] == "Bearer"


async def test_bearer_scheme_is_case_insensitive(
    client: httpx.AsyncClient, tenant_a: TenantHandle
) -> None:
    # RFC 9110 section 11.1: auth schemes are case-insensitive.
    response = await client.get(
        "/api/customers", headers={"Authorization": f"bearer {tenant_a.key}"}
    )
    assert response.status_code == 200, response.text


@pytest.mark.parametrize("path", TENANT_ROUTES)
async def test_admin_on_a_tenant_route_must_name_the_tenant(
    client: httpx.AsyncClient, admin: dict[str, str], path: str
) -> None:
    response = await client.get(path, headers=admin)
    assert_problem(response, 400, "tenant_required")


async def test_admin_writes_need_a_tenant_too(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    response = await client.post(
        "/api/customers", json={"name": "N", "email": "n@example.com"}, headers=admin
    )
    assert_problem(response, 400, "tenant_required")


async def test_admin_with_tenant_header_acts_as_that_tenant(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    tenant_a: TenantHandle,
    tenant_b: TenantHandle,
) -> None:
    as_a = {**admin, "X-Tenant-Id": tenant_a.id}
    created = await client.post(
        "/api/customers", json={"name": "Via admin", "email": "admin@example.com"}, headers=as_a
    )
    assert created.status_code == 201, created.text
    customer_id = created.json()["id"]
    theirs = await make_customer(client, tenant_b, "Not yours")

    # Tenant A's own key sees what the admin created for it; tenant B does not.
    mine = await client.get(f"/api/customers/{customer_id}", headers=tenant_a.headers)
    assert mine.status_code == 200, mine.text
    other = await client.get(f"/api/customers/{customer_id}", headers=tenant_b.headers)
    assert_problem(other, 404, "customer_not_found")

    listed = await client.get("/api/customers", headers=as_a)
    assert [c["id"] for c in listed.json()["data"]] == [customer_id]
    hidden = await client.get(f"/api/customers/{theirs['id']}", headers=as_a)
    assert_problem(hidden, 404, "customer_not_found")

    # The tenant's own settings apply: A's 11% default tax, not B's.
    invoice = await client.post(
        "/api/invoices",
        json={
            "customerId": customer_id,
            "items": [{"description": "x", "quantity": 1, "unitPrice": "100"}],
        },
        headers=as_a,
    )
    assert invoice.status_code == 201, invoice.text
    assert (invoice.json()["currency"], invoice.json()["tax"]) == ("USD", "11.00")
    # The record says who really acted: the admin, not tenant A's key.
    timeline = await client.get(
        f"/api/invoices/{invoice.json()['id']}/timeline", headers=tenant_a.headers
    )
    assert [e["actor"]["type"] for e in timeline.json()["data"]] == ["admin"]


async def test_admin_tenant_header_is_trimmed_and_case_insensitive(
    client: httpx.AsyncClient, admin: dict[str, str], tenant_a: TenantHandle
) -> None:
    header = f"  {tenant_a.id.upper()} "
    response = await client.get("/api/customers", headers={**admin, "X-Tenant-Id": header})
    assert response.status_code == 200, response.text


@pytest.mark.parametrize("value", ["", "nope", "1234", "01a2-bad", str(uuid.uuid4()) + "0"])
async def test_malformed_tenant_header_is_400(
    client: httpx.AsyncClient, admin: dict[str, str], tenant_a: TenantHandle, value: str
) -> None:
    for headers in ({**admin, "X-Tenant-Id": value}, {**tenant_a.headers, "X-Tenant-Id": value}):
        response = await client.get("/api/customers", headers=headers)
        assert_problem(response, 400, "invalid_tenant_id")


async def test_admin_with_unknown_tenant_is_404(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    headers = {**admin, "X-Tenant-Id": str(uuid.uuid4())}
    response = await client.get("/api/customers", headers=headers)
    assert_problem(response, 404, "tenant_not_found")
    created = await client.post(
        "/api/customers", json={"name": "Ghost", "email": "g@example.com"}, headers=headers
    )
    assert_problem(created, 404, "tenant_not_found")


async def test_api_key_naming_another_tenant_is_403(
    client: httpx.AsyncClient, tenant_a: TenantHandle, tenant_b: TenantHandle
) -> None:
    await make_customer(client, tenant_b, "Secret Co")
    headers = {**tenant_a.headers, "X-Tenant-Id": tenant_b.id}
    listed = await client.get("/api/customers", headers=headers)
    assert_problem(listed, 403, "tenant_mismatch")
    assert "Secret Co" not in listed.text

    created = await client.post(
        "/api/customers", json={"name": "Planted", "email": "p@example.com"}, headers=headers
    )
    assert_problem(created, 403, "tenant_mismatch")
    theirs = await client.get("/api/customers", headers=tenant_b.headers)
    assert [c["name"] for c in theirs.json()["data"]] == ["Secret Co"]


async def test_api_key_naming_an_unknown_tenant_is_403(
    client: httpx.AsyncClient, tenant_a: TenantHandle
) -> None:
    headers = {**tenant_a.headers, "X-Tenant-Id": str(uuid.uuid4())}
    response = await client.get("/api/customers", headers=headers)
    assert_problem(response, 403, "tenant_mismatch")


async def test_api_key_naming_its_own_tenant_is_fine(
    client: httpx.AsyncClient, tenant_a: TenantHandle
) -> None:
    customer = await make_customer(client, tenant_a)
    headers = {**tenant_a.headers, "X-Tenant-Id": tenant_a.id}
    response = await client.get("/api/customers", headers=headers)
    assert response.status_code == 200, response.text
    assert [c["id"] for c in response.json()["data"]] == [customer["id"]]


async def test_a_new_tenant_key_works_immediately(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    tenant = await client.post("/api/tenants", json={"name": "Fresh"}, headers=admin)
    key = await client.post(
        f"/api/tenants/{tenant.json()['id']}/api-keys", json={"name": "k"}, headers=admin
    )
    headers = {"Authorization": f"Bearer {key.json()['key']}"}
    response = await client.get("/api/customers", headers=headers)
    assert response.status_code == 200, response.text
    assert response.json()["data"] == []
