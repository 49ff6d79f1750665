"""The list query has an index led by tenant_id that serves its filter and its order."""

import httpx
import pytest

from tenvoice.platform.db import Database
from tests.conftest import TenantHandle, make_customer, make_invoice
from tests.invoices.support import act_ok, list_invoices
from tests.plans import Explained, explain_page, has_sort


@pytest.mark.backend("postgresql")
async def test_open_invoices_newest_first_use_the_tenant_status_index(
    client: httpx.AsyncClient,
    db: Database,
    tenant_a: TenantHandle,
    tenant_b: TenantHandle,
) -> None:
    for tenant in (tenant_a, tenant_b):
        customer = await make_customer(client, tenant)
        for n in range(12):
            invoice = await make_invoice(client, tenant, customer["id"])
            if n % 3:
                await act_ok(client, tenant, invoice["id"], "finalize")

    first_page = await _plan_of_list(client, db, tenant_a, {"status": "open", "limit": "3"})
    cursor = first_page.body["pagination"]["nextCursor"]
    deep_page = await _plan_of_list(
        client, db, tenant_a, {"status": "open", "limit": "3", "cursor": cursor}
    )

    assert len(first_page.body["data"]) == 3
    assert "ORDER BY invoices.created_at DESC, invoices.id DESC" in first_page.statement
    assert 4 in tuple(first_page.parameters)  # limit + 1 tells whether a next page exists
    for page in (first_page, deep_page):
        assert "ix_invoices_tenant_status_created" in page.plan, page.plan
        # The index delivers the order: no separate sort of the matching rows.
        assert not has_sort(page.plan), page.plan
    # The cursor's (created_at, id) bound is part of the index range, not a filter applied to
    # every row before it: this is why a page at any depth costs what the first one does.
    index_condition = next(line for line in deep_page.plan.splitlines() if "Index Cond" in line)
    assert "ROW(created_at, id) <" in index_condition, deep_page.plan


async def _plan_of_list(
    client: httpx.AsyncClient, db: Database, tenant: TenantHandle, params: dict[str, str]
) -> Explained:
    return await explain_page(db, tenant.id, "invoices", list_invoices(client, tenant, params))
