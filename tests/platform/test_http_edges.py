import re
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from tests.conftest import TenantHandle
from tests.problems import assert_problem, error_fields

MAX_BODY = 1024 * 1024
GENERATED_ID = re.compile(r"^[0-9a-f]{32}$")


async def customer_count(client: httpx.AsyncClient, tenant: TenantHandle) -> int:
    response = await client.get(
        "/api/customers", params={"includeTotal": "true"}, headers=tenant.headers
    )
    count: int = response.json()["pagination"]["totalCount"]
    return count


def oversized_customer() -> bytes:
    padding = "x" * MAX_BODY
    return (
        f'{{"name": "Big", "email": "big@example.com", "metadata": {{"p": "{padding}"}}}}'.encode()
    )


async def test_unknown_route_is_404_problem(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/nothing-here")
    problem = assert_problem(response, 404, "not_found")
    assert problem["type"].startswith("https://")
    assert "errors" not in problem


async def test_unknown_route_is_404_even_with_credentials(
    client: httpx.AsyncClient, tenant_a: TenantHandle
) -> None:
    response = await client.post("/api/widgets", json={}, headers=tenant_a.headers)
    assert_problem(response, 404, "not_found")


async def test_wrong_method_is_405(client: httpx.AsyncClient, tenant_a: TenantHandle) -> None:
    response = await client.put("/api/customers", json={}, headers=tenant_a.headers)
    assert_problem(response, 405, "method_not_allowed")
    # Two routes share this path (list and create): Allow names the methods of both.
    assert response.headers["allow"] == "GET, POST"


@pytest.mark.parametrize("raw", [b"{", b'{"name": "x",}', b"not json", b'{"name": "\xff"}'])
async def test_malformed_json_is_400(
    client: httpx.AsyncClient, tenant_a: TenantHandle, raw: bytes
) -> None:
    response = await client.post(
        "/api/customers",
        content=raw,
        headers={**tenant_a.headers, "Content-Type": "application/json"},
    )
    problem = assert_problem(response, 400, "malformed_json")
    assert "Expecting" not in problem["detail"]


async def test_json_with_parameters_or_suffix_is_accepted(
    client: httpx.AsyncClient, tenant_a: TenantHandle
) -> None:
    body = b'{"name": "Typed", "email": "typed@example.com"}'
    for content_type in ("application/json; charset=utf-8", "Application/JSON"):
        response = await client.post(
            "/api/customers",
            content=body,
            headers={**tenant_a.headers, "Content-Type": content_type},
        )
        assert response.status_code == 201, (content_type, response.text)


async def test_body_over_the_limit_is_413(
    client: httpx.AsyncClient, tenant_a: TenantHandle
) -> None:
    raw = oversized_customer()
    assert len(raw) > MAX_BODY
    response = await client.post(
        "/api/customers",
        content=raw,
        headers={**tenant_a.headers, "Content-Type": "application/json"},
    )
    problem = assert_problem(response, 413, "payload_too_large")
    assert str(MAX_BODY) in problem["detail"]
    assert await customer_count(client, tenant_a) == 0


async def test_streamed_body_over_the_limit_is_413(
    client: httpx.AsyncClient, tenant_a: TenantHandle
) -> None:
    raw = oversized_customer()

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(raw), 64 * 1024):
            yield raw[start : start + 64 * 1024]

    response = await client.post(
        "/api/customers",
        content=chunks(),
        headers={**tenant_a.headers, "Content-Type": "application/json"},
    )
    # No Content-Length: the limit must hold while the body arrives, not only up front.
    assert "content-length" not in response.request.headers
    assert_problem(response, 413, "payload_too_large")
    assert await customer_count(client, tenant_a) == 0


async def test_streamed_body_under_the_limit_is_accepted(
    client: httpx.AsyncClient, tenant_a: TenantHandle
) -> None:
    raw = b'{"name": "Streamed", "email": "s@example.com"}'

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(raw), 8):
            yield raw[start : start + 8]

    response = await client.post(
        "/api/customers",
        content=chunks(),
        headers={**tenant_a.headers, "Content-Type": "application/json"},
    )
    assert response.status_code == 201, response.text


async def test_body_at_the_limit_is_accepted(
    client: httpx.AsyncClient, tenant_a: TenantHandle
) -> None:
    raw = b'{"name": "Padded", "email": "p@example.com"}'
    raw = raw + b" " * (MAX_BODY - len(raw))
    response = await client.post(
        "/api/customers",
        content=raw,
        headers={**tenant_a.headers, "Content-Type": "application/json"},
    )
    assert response.status_code == 201, response.text


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data"]
)
async def test_non_json_body_is_415(
    client: httpx.AsyncClient, tenant_a: TenantHandle, content_type: str
) -> None:
    response = await client.post(
        "/api/customers",
        content=b'{"name": "Sneaky", "email": "s@example.com"}',
        headers={**tenant_a.headers, "Content-Type": content_type},
    )
    assert_problem(response, 415, "unsupported_media_type")
    assert await customer_count(client, tenant_a) == 0


async def test_body_without_content_type_is_415(
    client: httpx.AsyncClient, tenant_a: TenantHandle
) -> None:
    response = await client.post(
        "/api/customers",
        content=b'{"name": "N", "email": "n@example.com"}',
        headers=tenant_a.headers,
    )
    assert "content-type" not in response.request.headers
    assert_problem(response, 415, "unsupported_media_type")


async def test_422_lists_every_field_with_its_path(
    client: httpx.AsyncClient, tenant_a: TenantHandle
) -> None:
    response = await client.post(
        "/api/customers",
        json={"email": "bad", "address": {"country": "usa"}, "extra": 1},
        headers=tenant_a.headers,
    )
    problem = assert_problem(response, 422, "validation_failed")
    assert error_fields(problem) == {"name", "email", "address.country", "extra"}
    messages = {e["field"]: e["message"] for e in problem["errors"]}
    assert messages["extra"] == "unknown field"
    assert problem["detail"].startswith(problem["errors"][0]["field"])


async def test_422_paths_index_into_lists(
    client: httpx.AsyncClient, tenant_a: TenantHandle
) -> None:
    customer = await client.post(
        "/api/customers", json={"name": "N", "email": "n@example.com"}, headers=tenant_a.headers
    )
    items = [
        {"description": "ok", "quantity": 1, "unitPrice": "1"},
        {"description": "bad", "quantity": 0, "unitPrice": "1"},
    ]
    response = await client.post(
        "/api/invoices",
        json={"customerId": customer.json()["id"], "items": items},
        headers=tenant_a.headers,
    )
    problem = assert_problem(response, 422, "validation_failed")
    assert error_fields(problem) == {"items[1].quantity"}


async def test_request_id_is_echoed_when_sane(
    client: httpx.AsyncClient, tenant_a: TenantHandle
) -> None:
    sane = "req-2026.11:abc_DEF"
    ok = await client.get("/api/customers", headers={**tenant_a.headers, "X-Request-Id": sane})
    assert ok.status_code == 200
    assert ok.headers["x-request-id"] == sane

    failed = await client.get("/api/customers", headers={"X-Request-Id": sane})
    problem = assert_problem(failed, 401, "unauthorized")
    assert problem["requestId"] == sane


@pytest.mark.parametrize(
    "insane", ["has space", "x" * 129, "semi;colon", "new\tline", "<script>", "é"]
)
async def test_insane_request_id_is_replaced(client: httpx.AsyncClient, insane: str) -> None:
    response = await client.get(
        "/api/nothing", headers=[(b"X-Request-Id", insane.encode("latin-1"))]
    )
    assert_problem(response, 404, "not_found")
    assert GENERATED_ID.match(response.headers["x-request-id"])


async def test_request_id_is_generated_and_unique(client: httpx.AsyncClient) -> None:
    ids = set()
    for path in ("/healthz", "/healthz", "/api/nothing", "/api/customers"):
        response = await client.get(path)
        assert GENERATED_ID.match(response.headers["x-request-id"]), path
        ids.add(response.headers["x-request-id"])
    assert len(ids) == 4


async def test_request_id_on_body_guard_responses(
    client: httpx.AsyncClient, tenant_a: TenantHandle
) -> None:
    headers = {**tenant_a.headers, "X-Request-Id": "guarded-1"}
    too_large = await client.post(
        "/api/customers",
        content=oversized_customer(),
        headers={**headers, "Content-Type": "application/json"},
    )
    assert too_large.json()["requestId"] == too_large.headers["x-request-id"] == "guarded-1"
    wrong_type = await client.post(
        "/api/customers", content=b"x", headers={**headers, "Content-Type": "text/plain"}
    )
    assert wrong_type.json()["requestId"] == wrong_type.headers["x-request-id"] == "guarded-1"


async def test_unexpected_error_is_a_bare_500(app: FastAPI) -> None:
    async def explode() -> None:
        raise RuntimeError("secret detail")

    app.add_api_route("/test-only/explode", explode)
    # The server error handler re-raises after answering, as ASGI servers expect; tell
    # httpx to return the answer rather than raise it.
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://tenvoice.test") as client:
        response = await client.get("/test-only/explode", headers={"X-Request-Id": "boom-1"})
        generated = await client.get("/test-only/explode")

    problem = assert_problem(response, 500, "internal_error")
    assert problem["requestId"] == "boom-1"
    assert "secret detail" not in response.text
    assert "RuntimeError" not in response.text
    assert "Traceback" not in response.text
    assert_problem(generated, 500, "internal_error")
    assert GENERATED_ID.match(generated.headers["x-request-id"])
