"""Rate limits in one process (API.md "Rate limits"): each test serves a second app with small
budgets on the test's database; the `client` fixture's app, with the suite's large budgets,
sets up tenants and checks what a refused request left behind."""

import asyncio
import re
from collections.abc import AsyncIterator, Callable

import httpx
import pytest
from fastapi import FastAPI

from tenvoice.config import Settings
from tenvoice.main import create_app
from tenvoice.platform.db import Database
from tests.conftest import TenantHandle
from tests.problems import assert_problem

HERE, ELSEWHERE = "203.0.113.1", "198.51.100.7"


class Limited:
    """An app with the budgets a test gives, and its clients (closed with the test)."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app
        self.clients: list[httpx.AsyncClient] = []

    def client(self, address: str = HERE) -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=self.app, client=(address, 40_000))
        client = httpx.AsyncClient(transport=transport, base_url="http://tenvoice.test")
        self.clients.append(client)
        return client


Serve = Callable[..., Limited]


@pytest.fixture
async def limited(settings: Settings, db: Database) -> AsyncIterator[Serve]:
    """`limited(rate_limit=...)`: an app with those budgets on the test's database."""
    served: list[Limited] = []

    def serve(**budgets: str | None) -> Limited:
        served.append(Limited(create_app(settings.model_copy(update=budgets), db=db)))
        return served[-1]

    yield serve
    for limited_app in served:
        for client in limited_app.clients:
            await client.aclose()


def reset_of(response: httpx.Response) -> int:
    match = re.search(r";t=(\d+)$", response.headers["ratelimit"])
    assert match is not None, response.headers["ratelimit"]
    return int(match[1])


def remaining(response: httpx.Response) -> str:
    """`RateLimit` without its reset, which depends on the clock: `"policy";r=N`."""
    return response.headers["ratelimit"].rsplit(";t=", 1)[0]


async def test_a_credential_over_its_budget_is_refused_and_nothing_changes(
    client: httpx.AsyncClient, limited: Serve, tenant_a: TenantHandle
) -> None:
    api = limited(rate_limit="5/minute").client()
    for spent in range(1, 6):
        response = await api.get("/api/customers", headers=tenant_a.headers)
        assert response.status_code == 200, response.text
        # The tenant's budget defaults to four times a credential's.
        assert response.headers["ratelimit-policy"] == ('"credential";q=5;w=60, "tenant";q=20;w=60')
        assert remaining(response) == f'"credential";r={5 - spent}'
        assert 1 <= reset_of(response) <= 60

    body = {"name": "Refused", "email": "refused@example.com"}
    headers = {**tenant_a.headers, "X-Request-Id": "over-budget-1", "Idempotency-Key": "k1"}
    refused = await api.post("/api/customers", json=body, headers=headers)
    problem = assert_problem(refused, 429, "rate_limited")
    assert problem["requestId"] == "over-budget-1"
    assert "credential" in problem["detail"]
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    assert refused.headers["ratelimit-policy"] == '"credential";q=5;w=60, "tenant";q=20;w=60'
    assert remaining(refused) == '"credential";r=0'

    listed = await client.get("/api/customers", headers=tenant_a.headers)
    assert listed.json()["data"] == []
    # The refused request never claimed its Idempotency-Key either.
    created = await client.post("/api/customers", json=body, headers=headers)
    assert created.status_code == 201, created.text
    assert "idempotent-replayed" not in created.headers


async def test_a_budget_is_whole_again_when_its_window_ends(
    limited: Serve, tenant_a: TenantHandle
) -> None:
    api = limited(rate_limit="2/second").client()
    for _ in range(2):
        assert (await api.get("/api/customers", headers=tenant_a.headers)).status_code == 200
    refused = await api.get("/api/customers", headers=tenant_a.headers)
    assert_problem(refused, 429, "rate_limited")
    assert refused.headers["retry-after"] == "1"
    await asyncio.sleep(int(refused.headers["retry-after"]) + 0.05)
    again = await api.get("/api/customers", headers=tenant_a.headers)
    assert again.status_code == 200, again.text
    assert remaining(again) == '"credential";r=1'


async def test_a_tenants_keys_share_its_budget(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    limited: Serve,
    tenant_a: TenantHandle,
    tenant_b: TenantHandle,
) -> None:
    second = await client.post(
        f"/api/tenants/{tenant_a.id}/api-keys", json={"name": "second"}, headers=admin
    )
    other_key = {"Authorization": f"Bearer {second.json()['key']}"}
    api = limited(rate_limit="100/minute", tenant_rate_limit="3/minute").client()

    for headers in (tenant_a.headers, tenant_a.headers, other_key):
        response = await api.get("/api/customers", headers=headers)
        assert response.status_code == 200, response.text
    # The tenant's budget is closer to running out than either key's.
    assert remaining(response) == '"tenant";r=0'
    assert response.headers["ratelimit-policy"] == '"credential";q=100;w=60, "tenant";q=3;w=60'

    refused = await api.get("/api/customers", headers=other_key)
    problem = assert_problem(refused, 429, "rate_limited")
    assert "tenant" in problem["detail"]
    assert remaining(refused) == '"tenant";r=0'

    # Another tenant, and the admin acting as this one, spend budgets of their own.
    assert (await api.get("/api/customers", headers=tenant_b.headers)).status_code == 200
    as_tenant = {**admin, "X-Tenant-Id": tenant_a.id}
    acting = await api.get("/api/customers", headers=as_tenant)
    assert acting.status_code == 200, acting.text
    assert acting.headers["ratelimit-policy"] == '"credential";q=100;w=60'


async def test_the_budget_the_admin_sets_applies_at_once_and_null_restores_the_default(
    admin: dict[str, str], limited: Serve, tenant_a: TenantHandle
) -> None:
    api = limited(rate_limit="100/minute").client()
    before = await api.get("/api/customers", headers=tenant_a.headers)
    assert before.headers["ratelimit-policy"] == '"credential";q=100;w=60, "tenant";q=400;w=60'

    changed = await api.patch(f"/api/tenants/{tenant_a.id}", json={"rateLimit": "2/minute"},
                              headers=admin)  # fmt: skip
    assert changed.status_code == 200, changed.text
    for left in (1, 0):
        response = await api.get("/api/customers", headers=tenant_a.headers)
        assert response.status_code == 200, response.text
        assert response.headers["ratelimit-policy"] == (
            '"credential";q=100;w=60, "tenant";q=2;w=60'
        )
        assert remaining(response) == f'"tenant";r={left}'
    assert_problem(await api.get("/api/customers", headers=tenant_a.headers), 429, "rate_limited")

    restored = await api.patch(f"/api/tenants/{tenant_a.id}", json={"rateLimit": None},
                               headers=admin)  # fmt: skip
    assert restored.json()["rateLimit"] is None
    after = await api.get("/api/customers", headers=tenant_a.headers)
    assert after.status_code == 200, after.text
    assert after.headers["ratelimit-policy"] == '"credential";q=100;w=60, "tenant";q=400;w=60'


async def test_hosted_pages_are_limited_per_client_address(limited: Serve) -> None:
    page = "/hosted/invoices/no-such-token"
    served = limited(hosted_rate_limit="2/minute", rate_limit="1/minute")
    here = served.client()
    for left in (1, 0):
        response = await here.get(page)
        assert response.status_code == 404
        assert response.headers["ratelimit-policy"] == '"hosted";q=2;w=60'
        assert remaining(response) == f'"hosted";r={left}'
    refused = await here.get(f"{page}/pdf")
    assert_problem(refused, 429, "rate_limited")
    assert 1 <= int(refused.headers["retry-after"]) <= 60

    # The same app from another address has its whole budget.
    assert (await served.client(ELSEWHERE).get(page)).status_code == 404


async def test_the_gateway_webhook_is_limited_per_source_address(limited: Serve) -> None:
    route = "/api/webhooks/payments"
    served = limited(webhook_rate_limit="2/minute", rate_limit="1/minute")
    gateway = served.client()
    for _ in range(2):
        response = await gateway.post(route, content=b"{}")
        assert_problem(response, 401, "invalid_signature")
        assert response.headers["ratelimit-policy"] == '"webhook";q=2;w=60'
    assert_problem(await gateway.post(route, content=b"{}"), 429, "rate_limited")

    elsewhere = served.client(ELSEWHERE)
    assert_problem(await elsewhere.post(route, content=b"{}"), 401, "invalid_signature")


async def test_requests_without_a_valid_key_are_limited_per_client_address(
    limited: Serve, tenant_a: TenantHandle
) -> None:
    served = limited(rate_limit="2/minute")
    api = served.client()
    made_up = {"Authorization": "Bearer tv_sk_" + "m" * 40}
    for headers in (made_up, {}):
        response = await api.get("/api/customers", headers=headers)
        assert response.status_code == 401
        assert response.headers["ratelimit-policy"] == '"anonymous";q=2;w=60'
    assert_problem(await api.get("/api/customers", headers=made_up), 429, "rate_limited")

    # A valid key from that address spends its own budget; another address has its own.
    assert (await api.get("/api/customers", headers=tenant_a.headers)).status_code == 200
    elsewhere = served.client(ELSEWHERE)
    assert (await elsewhere.get("/api/customers", headers=made_up)).status_code == 401


async def test_operations_routes_are_never_limited(limited: Serve) -> None:
    ops = limited(rate_limit="1/minute", hosted_rate_limit="1/minute").client()
    for path in ("/healthz", "/readyz", "/metrics", "/openapi.json", "/docs", "/redoc"):
        for _ in range(3):
            response = await ops.get(path)
            assert response.status_code == 200, (path, response.text)
            assert "ratelimit" not in response.headers
            assert "ratelimit-policy" not in response.headers
