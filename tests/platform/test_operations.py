import uuid
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tenvoice.config import Settings
from tenvoice.main import create_app
from tenvoice.platform.db import Database
from tenvoice.platform.migrate import revisions, schema_is_behind
from tests.conftest import ADMIN_KEY, TenantHandle
from tests.problems import assert_problem


def requests_total(exposition: str, method: str, route: str, status: str) -> float:
    for family in text_string_to_metric_families(exposition):
        if family.name != "tenvoice_http_requests":
            continue
        for sample in family.samples:
            wanted = {"method": method, "route": route, "status": status}
            if sample.name.endswith("_total") and sample.labels == wanted:
                return sample.value
    return 0.0


async def test_healthz_needs_no_credentials(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert response.headers["x-request-id"]


async def test_readyz_when_the_database_answers(client: httpx.AsyncClient) -> None:
    response = await client.get("/readyz")
    assert response.status_code == 200, response.text
    assert response.json() == {"status": "ready"}


async def test_readyz_is_503_when_the_database_is_unreachable(settings: Settings) -> None:
    unreachable = Database("postgresql://nobody@127.0.0.1:1/none")
    app = create_app(settings, db=unreachable)
    transport = httpx.ASGITransport(app=app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://tenvoice.test") as c:
            ready = await c.get("/readyz")
            alive = await c.get("/healthz")
    finally:
        await unreachable.dispose()
    problem = assert_problem(ready, 503, "database_unreachable")
    # The driver's error (host, port, role) is for the log, not the client.
    for leak in ("127.0.0.1", "nobody", "Connect", "refused"):
        assert leak not in problem["detail"]
    # Liveness is about the process: a database outage must not get it restarted.
    assert alive.status_code == 200


async def test_tenant_routes_are_503_while_the_database_is_down(settings: Settings) -> None:
    unreachable = Database("postgresql://nobody@127.0.0.1:1/none")
    app = create_app(settings, db=unreachable)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    key = {"Authorization": "Bearer tv_sk_" + "a" * 43}
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://tenvoice.test") as c:
            responses = [
                await c.get("/api/customers", headers=key),
                await c.get("/api/tenants", headers={"Authorization": f"Bearer {ADMIN_KEY}"}),
            ]
    finally:
        await unreachable.dispose()
    for response in responses:
        problem = assert_problem(response, 503, "service_unavailable")
        assert response.headers["retry-after"] == "1"
        assert "refused" not in problem["detail"]


async def test_readyz_is_503_until_the_database_is_migrated(
    settings: Settings, tmp_path: Path
) -> None:
    empty = Database(f"sqlite:///{tmp_path / 'empty.db'}")
    app = create_app(settings, db=empty)
    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://tenvoice.test"
        ) as c:
            ready = await c.get("/readyz")
    finally:
        await empty.dispose()
    assert_problem(ready, 503, "database_not_migrated")


def test_schema_versions_that_need_a_migration() -> None:
    head, _ = revisions()
    assert schema_is_behind(None)
    assert not schema_is_behind(head)
    # Written by a newer build: this one runs on it, since migrations expand first.
    assert not schema_is_behind("a-revision-from-the-future")


async def test_docs_serve_swagger_ui(client: httpx.AsyncClient) -> None:
    response = await client.get("/docs")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "swagger-ui" in response.text.lower()
    assert "/openapi.json" in response.text


async def test_openapi_describes_the_api(client: httpx.AsyncClient) -> None:
    response = await client.get("/openapi.json")
    assert response.status_code == 200
    spec = response.json()
    assert spec["openapi"].startswith("3.")
    paths = spec["paths"]
    assert {"post", "get"} <= set(paths["/api/invoices"])
    assert {"get", "patch", "delete"} <= set(paths["/api/invoices/{invoice_id}"])
    for action in ("finalize", "send", "void", "mark-uncollectible"):
        assert "post" in paths[f"/api/invoices/{{invoice_id}}/{action}"], action
    assert "get" in paths["/api/invoices/{invoice_id}/timeline"]
    assert {"post", "get"} <= set(paths["/api/customers"])
    assert {"post", "get"} <= set(paths["/api/tenants"])
    # Wire names are camelCase in the published schema as on the wire.
    schemas = spec["components"]["schemas"]
    assert "customerId" in schemas["InvoiceCreate"]["properties"]
    assert "customer_id" not in schemas["InvoiceCreate"]["properties"]
    # Errors are documented as what they are: problem+json, and nothing else.
    finalize = paths["/api/invoices/{invoice_id}/finalize"]["post"]["responses"]
    assert {"401", "404", "409", "422"} <= set(finalize)
    assert set(finalize["409"]["content"]) == {"application/problem+json"}
    assert {"code", "requestId", "errors"} <= set(schemas["Problem"]["properties"])


async def test_metrics_count_requests_by_route_template(
    client: httpx.AsyncClient, tenant_a: TenantHandle
) -> None:
    template = "/api/customers/{customer_id}"
    before = (await client.get("/metrics")).text
    missing = uuid.uuid4()
    for _ in range(3):
        await client.get(f"/api/customers/{missing}", headers=tenant_a.headers)
    await client.get("/healthz")

    response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    after = response.text
    assert "tenvoice_http_requests_total" in after
    assert (
        requests_total(after, "GET", template, "404")
        - requests_total(before, "GET", template, "404")
        == 3
    )
    assert requests_total(after, "GET", "/healthz", "200") > requests_total(
        before, "GET", "/healthz", "200"
    )
    # Concrete ids never become label values: one series per route, not per object.
    assert str(missing) not in after


async def test_metrics_fold_unknown_paths_into_one_series(client: httpx.AsyncClient) -> None:
    probe = f"/api/probe-{uuid.uuid4().hex}"
    await client.get(probe)
    after = (await client.get("/metrics")).text
    assert probe not in after
    assert requests_total(after, "GET", "unmatched", "404") >= 1
