"""Invoice responses are built as plain dicts for speed; they must be exactly what the
documented models (InvoiceOut, Page[InvoiceOut]) would have produced."""

from typing import Any

import httpx
import pytest

from tenvoice.invoices.schemas import InvoiceOut
from tenvoice.platform.pagination import Page
from tests.conftest import TenantHandle, make_customer, make_invoice

ITEMS: list[dict[str, Any]] = [
    {"description": "Fine work", "quantity": "1.5", "unitPrice": "19.999", "taxRate": "7.25"},
    {"description": "Hosting", "quantity": 3, "unitPrice": "0.10"},
]


def _as_documented(body: dict[str, Any], model: Any) -> dict[str, Any]:
    dumped: dict[str, Any] = model.model_validate(body).model_dump(mode="json", by_alias=True)
    return dumped


@pytest.fixture
async def invoices(client: httpx.AsyncClient, tenant_a: TenantHandle) -> list[dict[str, Any]]:
    customer = await make_customer(client, tenant_a)
    draft = await make_invoice(client, tenant_a, customer["id"], items=ITEMS)
    opened = await make_invoice(
        client, tenant_a, customer["id"], items=ITEMS, finalize=True, memo="Thanks"
    )
    yen = await make_invoice(
        client, tenant_a, customer["id"], items=ITEMS[1:], currency="JPY", metadata={"po": "7"}
    )
    return [draft, opened, yen]


async def test_every_invoice_answer_is_its_documented_model(
    client: httpx.AsyncClient, tenant_a: TenantHandle, invoices: list[dict[str, Any]]
) -> None:
    for created in invoices:
        assert _as_documented(created, InvoiceOut) == created
        fetched = await client.get(f"/api/invoices/{created['id']}", headers=tenant_a.headers)
        assert fetched.headers["content-type"] == "application/json"
        assert _as_documented(fetched.json(), InvoiceOut) == fetched.json() == created
    finalized = await client.post(
        f"/api/invoices/{invoices[0]['id']}/finalize", headers=tenant_a.headers
    )
    assert finalized.status_code == 200
    assert _as_documented(finalized.json(), InvoiceOut) == finalized.json()
    assert finalized.json()["hostedUrl"].startswith("http")


@pytest.mark.parametrize("paging", ["limit=2", "page=1&pageSize=2&includeTotal=true"])
async def test_a_page_of_invoices_is_its_documented_model(
    client: httpx.AsyncClient,
    tenant_a: TenantHandle,
    invoices: list[dict[str, Any]],
    paging: str,
) -> None:
    response = await client.get(f"/api/invoices?{paging}", headers=tenant_a.headers)
    assert response.status_code == 200, response.text
    page = response.json()
    assert _as_documented(page, Page[InvoiceOut]) == page
    assert len(page["data"]) == 2
    assert page["pagination"]["hasMore"] is True
    by_id = {invoice["id"]: invoice for invoice in invoices}
    assert all(invoice == by_id[invoice["id"]] for invoice in page["data"])


async def test_the_documented_schema_still_describes_invoices(client: httpx.AsyncClient) -> None:
    schema = (await client.get("/openapi.json")).json()
    get = schema["paths"]["/api/invoices/{invoice_id}"]["get"]["responses"]["200"]
    assert get["content"]["application/json"]["schema"]["$ref"].endswith("/InvoiceOut")
    created = schema["paths"]["/api/invoices"]["post"]["responses"]
    assert "201" in created
    assert created["201"]["content"]["application/json"]["schema"]["$ref"].endswith("/InvoiceOut")
    listed = schema["paths"]["/api/invoices"]["get"]["responses"]["200"]
    assert "InvoiceOut" in listed["content"]["application/json"]["schema"]["$ref"]
