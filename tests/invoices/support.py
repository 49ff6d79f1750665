"""HTTP helpers shared by the invoice tests."""

from typing import Any

import httpx

from tests.conftest import TenantHandle, get_ok, make_invoice

ACTIONS = ("finalize", "send", "void", "mark-uncollectible")
STATUSES = ("draft", "open", "paid", "void", "uncollectible")
ZERO_ITEMS = [{"description": "Free sample", "quantity": 1, "unitPrice": "0"}]


def item(unit_price: str, quantity: str = "1", tax_rate: str = "0") -> dict[str, Any]:
    return {
        "description": "Work",
        "quantity": quantity,
        "unitPrice": unit_price,
        "taxRate": tax_rate,
    }


async def act(
    client: httpx.AsyncClient, tenant: TenantHandle, invoice_id: str, action: str
) -> httpx.Response:
    return await client.post(f"/api/invoices/{invoice_id}/{action}", headers=tenant.headers)


async def act_ok(
    client: httpx.AsyncClient, tenant: TenantHandle, invoice_id: str, action: str
) -> dict[str, Any]:
    response = await act(client, tenant, invoice_id, action)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def fetch(client: httpx.AsyncClient, tenant: TenantHandle, invoice_id: str) -> dict[str, Any]:
    response = await client.get(f"/api/invoices/{invoice_id}", headers=tenant.headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def timeline(
    client: httpx.AsyncClient, tenant: TenantHandle, invoice_id: str
) -> list[dict[str, Any]]:
    response = await client.get(f"/api/invoices/{invoice_id}/timeline", headers=tenant.headers)
    assert response.status_code == 200, response.text
    events: list[dict[str, Any]] = response.json()["data"]
    return events


async def invoice_in(
    client: httpx.AsyncClient, tenant: TenantHandle, customer_id: str, status: str, **fields: Any
) -> dict[str, Any]:
    """An invoice brought to `status` through the API alone.

    `paid` is reached by finalizing a zero-total invoice: there is no payments API yet.
    """
    if status == "paid":
        invoice = await make_invoice(client, tenant, customer_id, items=ZERO_ITEMS, **fields)
    else:
        invoice = await make_invoice(client, tenant, customer_id, **fields)
    if status == "draft":
        return invoice
    invoice = await act_ok(client, tenant, invoice["id"], "finalize")
    if status in ("void", "uncollectible"):
        action = "void" if status == "void" else "mark-uncollectible"
        invoice = await act_ok(client, tenant, invoice["id"], action)
    assert invoice["status"] == status
    return invoice


async def list_invoices(
    client: httpx.AsyncClient, tenant: TenantHandle, params: Any = None
) -> dict[str, Any]:
    return await get_ok(client, tenant, "/api/invoices", params)


async def listed_ids(
    client: httpx.AsyncClient, tenant: TenantHandle, params: Any = None
) -> list[str]:
    """Ids of one offset page of the list (100 rows: enough for every filter test)."""
    query = [*(params or []), ("pageSize", "100")]
    return [row["id"] for row in (await list_invoices(client, tenant, query))["data"]]
