"""sort=number orders invoices as issued, past the 99,999th of a year too (where the number
grows a sixth digit and text order would put INV-2026-100000 before INV-2026-99999)."""

import uuid
from typing import Any

import httpx

from tenvoice.invoices.models import InvoiceNumberCounter
from tenvoice.platform.db import Database, utcnow
from tests.conftest import TenantHandle, make_customer, make_invoice
from tests.invoices.support import act_ok, list_invoices


async def _walk(
    client: httpx.AsyncClient, tenant: TenantHandle, sort: str, limit: int
) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    params = {"sort": sort, "limit": str(limit)}
    while True:
        body = await list_invoices(client, tenant, params)
        rows.extend(body["data"])
        if not body["pagination"]["hasMore"]:
            return rows
        params = {**params, "cursor": body["pagination"]["nextCursor"]}


async def test_six_digit_numbers_sort_after_five_digit_ones(
    client: httpx.AsyncClient, db: Database, tenant_a: TenantHandle
) -> None:
    year = utcnow().year
    async with db.write(uuid.UUID(tenant_a.id)) as session:
        session.add(InvoiceNumberCounter(year=year, last_value=99_997))
        await session.commit()
    customer = await make_customer(client, tenant_a)
    drafts = [(await make_invoice(client, tenant_a, customer["id"]))["id"] for _ in range(5)]
    # Finalized out of creation order, so that number order is neither creation order nor
    # the order of the ids.
    issued = [await act_ok(client, tenant_a, drafts[n], "finalize") for n in (3, 0, 4, 1)]
    numbers = [invoice["number"] for invoice in issued]
    assert numbers == [f"INV-{year}-{n}" for n in ("99998", "99999", "100000", "100001")]
    in_order = [invoice["id"] for invoice in issued]
    draft = drafts[2]  # never finalized: no number, last either way

    for limit in (1, 2, 3, 100):
        assert [r["id"] for r in await _walk(client, tenant_a, "number", limit)] == [
            *in_order,
            draft,
        ], limit
        assert [r["id"] for r in await _walk(client, tenant_a, "-number", limit)] == [
            *in_order[::-1],
            draft,
        ], limit
    for sort, expected in (("number", in_order), ("-number", in_order[::-1])):
        pages = [
            await list_invoices(client, tenant_a, {"sort": sort, "page": str(n), "pageSize": "2"})
            for n in (1, 2, 3)
        ]
        assert [r["id"] for page in pages for r in page["data"]] == [*expected, draft], sort
