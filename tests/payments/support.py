"""Shared steps of the payment tests."""

from typing import Any

import httpx

from tests.conftest import TenantHandle


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
