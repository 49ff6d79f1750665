"""Shared steps of the payment tests."""

from typing import Any

import httpx

from tests.conftest import TenantHandle, get_ok, make_customer, make_invoice


async def pay(
    client: httpx.AsyncClient,
    tenant: TenantHandle,
    invoice_id: str,
    amount: str,
    *,
    method: str = "card",
    token: str | None = None,
) -> httpx.Response:
    body: dict[str, Any] = {"invoiceId": invoice_id, "amount": amount, "method": method}
    if token is not None:
        body["paymentToken"] = token
    return await client.post("/api/payments", json=body, headers=tenant.headers)


async def open_invoice(
    client: httpx.AsyncClient, tenant: TenantHandle, total: str
) -> dict[str, Any]:
    """A finalized invoice of the standard items, which come to `total` at `tenant`'s tax."""
    customer = await make_customer(client, tenant)
    invoice = await make_invoice(client, tenant, customer["id"], finalize=True)
    assert (invoice["status"], invoice["total"], invoice["amountDue"]) == ("open", total, total)
    return invoice


async def fetch(client: httpx.AsyncClient, tenant: TenantHandle, path: str) -> dict[str, Any]:
    return await get_ok(client, tenant, path)
