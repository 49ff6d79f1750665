"""Input the database cannot hold, or JSON that is not JSON, is refused at the edge.

API.md: strings never contain U+0000 (422 on both databases alike) and JSON is strict
RFC 8259 (NaN, Infinity and numbers that overflow a double -> 400). Every case must leave
nothing behind.
"""

from typing import Any

import httpx
import orjson
import pytest

from tests.conftest import TenantHandle, make_customer, make_invoice
from tests.gateway.test_webhook_endpoint import deliver, event, pending_payment
from tests.problems import assert_problem, error_fields

NUL = "\x00"


async def count(client: httpx.AsyncClient, tenant: TenantHandle, path: str) -> int:
    response = await client.get(path, params={"includeTotal": "true"}, headers=tenant.headers)
    assert response.status_code == 200, response.text
    total: int = response.json()["pagination"]["totalCount"]
    return total


def customer(**fields: Any) -> dict[str, Any]:
    return {"name": "Ada", "email": "ada@example.com", **fields}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (customer(name=f"Ada{NUL}Lovelace"), "name"),
        (customer(metadata={"plan": f"gold{NUL}"}), "metadata.plan"),
        (customer(metadata={f"pl{NUL}an": "gold"}), "metadata"),
        (customer(address={"line1": NUL, "country": "US"}), "address.line1"),
    ],
)
async def test_nul_in_a_customer_is_422_and_nothing_is_stored(
    client: httpx.AsyncClient, tenant_a: TenantHandle, body: dict[str, Any], field: str
) -> None:
    response = await client.post("/api/customers", json=body, headers=tenant_a.headers)
    problem = assert_problem(response, 422, "validation_failed")
    assert error_fields(problem) == {field}
    assert await count(client, tenant_a, "/api/customers") == 0


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"memo": f"thanks{NUL}"}, "memo"),
        ({"metadata": {"po": f"{NUL}"}}, "metadata.po"),
        (
            {
                "items": [{"description": "ok", "quantity": 1, "unitPrice": "1"}] * 2
                + [{"description": f"Con{NUL}sulting", "quantity": 1, "unitPrice": "1"}]
            },
            "items[2].description",
        ),
    ],
)
async def test_nul_in_an_invoice_is_422_and_nothing_is_stored(
    client: httpx.AsyncClient, tenant_a: TenantHandle, fields: dict[str, Any], field: str
) -> None:
    owner = await make_customer(client, tenant_a)
    body = {"customerId": owner["id"], "items": [{"description": "d", "quantity": 1}], **fields}
    body["items"] = fields.get("items", [{"description": "d", "quantity": 1, "unitPrice": "1"}])
    response = await client.post("/api/invoices", json=body, headers=tenant_a.headers)
    problem = assert_problem(response, 422, "validation_failed")
    assert error_fields(problem) == {field}
    assert await count(client, tenant_a, "/api/invoices") == 0


async def test_nul_in_an_update_or_an_admin_body_is_422(
    client: httpx.AsyncClient, tenant_a: TenantHandle, admin: dict[str, str]
) -> None:
    owner = await make_customer(client, tenant_a, name="Before")
    response = await client.patch(
        f"/api/customers/{owner['id']}", json={"name": f"After{NUL}"}, headers=tenant_a.headers
    )
    assert error_fields(assert_problem(response, 422, "validation_failed")) == {"name"}
    unchanged = await client.get(f"/api/customers/{owner['id']}", headers=tenant_a.headers)
    assert unchanged.json()["name"] == "Before"

    response = await client.post("/api/tenants", json={"name": f"Ev{NUL}il"}, headers=admin)
    assert error_fields(assert_problem(response, 422, "validation_failed")) == {"name"}


@pytest.mark.parametrize(
    ("path", "params", "field"),
    [
        ("/api/customers", {"search": f"Ada{NUL}"}, "search"),
        ("/api/invoices", {"search": NUL}, "search"),
        ("/api/customers", {f"odd{NUL}name": "x"}, f"odd{NUL}name".replace(NUL, "\\u0000")),
    ],
)
async def test_nul_in_a_query_parameter_is_422(
    client: httpx.AsyncClient,
    tenant_a: TenantHandle,
    path: str,
    params: dict[str, Any],
    field: str,
) -> None:
    response = await client.get(path, params=params, headers=tenant_a.headers)
    problem = assert_problem(response, 422, "validation_failed")
    assert error_fields(problem) == {field}


@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("/hosted/invoices/abc%00def", "token"),
        ("/hosted/invoices/abc%00def/pdf", "token"),
        ("/api/customers/%00", "customer_id"),
        ("/api/invoices/0190e0d4-0000-7000-8000-%00/timeline", "invoice_id"),
    ],
)
async def test_nul_in_a_path_id_is_422(
    client: httpx.AsyncClient, tenant_a: TenantHandle, path: str, field: str
) -> None:
    response = await client.get(path, headers=tenant_a.headers)
    problem = assert_problem(response, 422, "validation_failed")
    assert error_fields(problem) == {field}


@pytest.mark.parametrize(
    ("kind", "fields", "field"),
    [
        ("payment.succeeded", {"gatewayReference": f"gw{NUL}1"}, "data.gatewayReference"),
        ("payment.failed", {"failureMessage": f"declined{NUL}"}, "data.failureMessage"),
    ],
)
async def test_nul_in_a_signed_webhook_is_422_and_changes_nothing(
    client: httpx.AsyncClient,
    tenant_a: TenantHandle,
    kind: str,
    fields: dict[str, str],
    field: str,
) -> None:
    pending = await pending_payment(client, tenant_a)
    response = await deliver(client, event(pending, kind, **fields))
    problem = assert_problem(response, 422, "validation_failed")
    assert error_fields(problem) == {field}
    # The signature is checked first: an unsigned sender learns nothing about the body.
    unsigned = await client.post(
        "/api/webhooks/payments",
        content=orjson.dumps(event(pending, kind, **fields)),
        headers={"content-type": "application/json"},
    )
    assert_problem(unsigned, 401, "invalid_signature")
    payment = await client.get(f"/api/payments/{pending.payment_id}", headers=tenant_a.headers)
    assert payment.json()["status"] == "pending"


@pytest.mark.parametrize("number", ["NaN", "Infinity", "-Infinity", "1e999999", "-1e400"])
async def test_non_finite_numbers_are_malformed_json(
    client: httpx.AsyncClient, tenant_a: TenantHandle, number: str
) -> None:
    headers = {**tenant_a.headers, "Content-Type": "application/json"}
    raw = f'{{"name": "N", "email": "n@example.com", "metadata": {{"n": {number}}}}}'
    response = await client.post("/api/customers", content=raw.encode(), headers=headers)
    problem = assert_problem(response, 400, "malformed_json")
    assert "errors" not in problem
    assert await count(client, tenant_a, "/api/customers") == 0

    owner = await make_customer(client, tenant_a)
    raw = (
        f'{{"customerId": "{owner["id"]}", '
        f'"items": [{{"description": "d", "quantity": {number}, "unitPrice": "1"}}]}}'
    )
    response = await client.post("/api/invoices", content=raw.encode(), headers=headers)
    assert_problem(response, 400, "malformed_json")
    assert await count(client, tenant_a, "/api/invoices") == 0

    # Strict is not narrow: other escapes, a large finite number and one that underflows
    # to 0 are all JSON.
    raw = (
        '{"name": "Tab\\tand \\u00e9 and \\\\u0000", "email": "t@example.com", '
        '"metadata": {"big": 1e308, "tiny": 1e-999999, "text": "\\u0001"}}'
    )
    response = await client.post("/api/customers", content=raw.encode(), headers=headers)
    assert response.status_code == 201, response.text
    assert response.json()["name"] == "Tab\tand é and \\u0000"


async def test_non_finite_number_in_a_payment_is_malformed_json(
    client: httpx.AsyncClient, tenant_a: TenantHandle
) -> None:
    owner = await make_customer(client, tenant_a)
    invoice = await make_invoice(client, tenant_a, owner["id"], finalize=True)
    raw = f'{{"invoiceId": "{invoice["id"]}", "amount": Infinity, "method": "card"}}'
    response = await client.post(
        "/api/payments",
        content=raw.encode(),
        headers={**tenant_a.headers, "Content-Type": "application/json"},
    )
    assert_problem(response, 400, "malformed_json")
    assert await count(client, tenant_a, "/api/payments") == 0
