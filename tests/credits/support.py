"""Shared steps of the credit note, refund and balance tests."""

from typing import Any

import httpx

from tests.conftest import TenantHandle, get_ok
from tests.live import eventually


async def issue(
    client: httpx.AsyncClient,
    tenant: TenantHandle,
    invoice_id: str,
    lines: list[Any],
    **fields: Any,
) -> httpx.Response:
    body = {"invoiceId": invoice_id, "lines": lines, **fields}
    return await client.post("/api/credit-notes", json=body, headers=tenant.headers)


async def issued(
    client: httpx.AsyncClient,
    tenant: TenantHandle,
    invoice_id: str,
    lines: list[Any],
    **fields: Any,
) -> dict[str, Any]:
    response = await issue(client, tenant, invoice_id, lines, **fields)
    assert response.status_code == 201, response.text
    note: dict[str, Any] = response.json()
    assert note["status"] == "issued"
    return note


def item_line(invoice: dict[str, Any], index: int, **how: Any) -> dict[str, Any]:
    """A line crediting the invoice's item `index` by quantity or amount."""
    return {"invoiceItemId": invoice["items"][index]["id"], **how}


async def settled_refund(
    client: httpx.AsyncClient, tenant: TenantHandle, refund_id: str
) -> dict[str, Any]:
    """The refund once the gateway's webhook has moved it out of pending."""

    async def check() -> dict[str, Any]:
        refund = await get_ok(client, tenant, f"/api/refunds/{refund_id}")
        return refund if refund["status"] != "pending" else {}

    return await eventually(check)


async def ledger(
    client: httpx.AsyncClient, tenant: TenantHandle, customer_id: str
) -> list[dict[str, Any]]:
    page = await get_ok(
        client,
        tenant,
        f"/api/customers/{customer_id}/balance-transactions?pageSize=100",
    )
    entries: list[dict[str, Any]] = page["data"]
    return entries


async def event_types(
    client: httpx.AsyncClient, tenant: TenantHandle, invoice_id: str
) -> list[str]:
    timeline = await get_ok(client, tenant, f"/api/invoices/{invoice_id}/timeline")
    return [event["eventType"] for event in timeline["data"]]
