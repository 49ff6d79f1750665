"""Each way of reading the event log walks an index led by tenant_id in page order: the
database reads a page's rows and stops (LIMIT), at any depth, and sorts nothing."""

from typing import Any

import httpx
import pytest

from tenvoice.platform.db import Database
from tests.conftest import TenantHandle, make_customer, make_invoice
from tests.events.support import list_events
from tests.invoices.support import act_ok
from tests.plans import Explained, explain_page, has_sort


async def _seed(client: httpx.AsyncClient, tenant: TenantHandle) -> dict[str, Any]:
    """A customer and six invoices, each created then finalized; returns the last one."""
    customer = await make_customer(client, tenant)
    for _ in range(6):
        invoice = await make_invoice(client, tenant, customer["id"])
        await act_ok(client, tenant, invoice["id"], "finalize")
    return invoice


@pytest.mark.backend("postgresql")
@pytest.mark.parametrize(
    ("name", "index"),
    [
        ("everything", "ix_events_tenant_occurred"),
        ("one type", "ix_events_tenant_type"),
        ("one entity", "ix_events_tenant_entity"),
        ("one entity, two types", "ix_events_tenant_entity"),
    ],
)
async def test_a_page_is_one_backward_index_range(
    client: httpx.AsyncClient,
    db: Database,
    tenant_a: TenantHandle,
    tenant_b: TenantHandle,
    name: str,
    index: str,
) -> None:
    invoice = await _seed(client, tenant_a)
    await _seed(client, tenant_b)
    params = {
        "everything": {},
        "one type": {"type": "invoice.finalized"},
        "one entity": {"entityId": invoice["id"]},
        "one entity, two types": {"entityId": invoice["id"], "type": _TWO_TYPES},
    }[name]

    first = await _plan_of_list(client, db, tenant_a, {**params, "limit": "1"})
    cursor = first.body["pagination"]["nextCursor"]
    deep = await _plan_of_list(client, db, tenant_a, {**params, "limit": "1", "cursor": cursor})
    assert len(first.body["data"]) == len(deep.body["data"]) == 1
    assert "ORDER BY events.occurred_at DESC, events.id DESC" in first.statement
    for page in (first, deep):
        assert f"Index Scan Backward using {index}" in page.plan, page.plan
        assert page.plan.lstrip().startswith("Limit"), page.plan
        assert not has_sort(page.plan), page.plan
    # The cursor's bound is part of the index range, not a filter over every row: this is
    # why a page at any depth costs what the first one does.
    condition = next(line for line in deep.plan.splitlines() if "Index Cond" in line)
    assert "ROW(occurred_at, id) <" in condition, deep.plan


_TWO_TYPES = ["invoice.created", "invoice.finalized"]


@pytest.mark.backend("postgresql")
@pytest.mark.parametrize(
    "params",
    [
        {"type": "invoice.*"},
        {"type": ["invoice.created", "customer.*"]},
        {"entityType": "invoice"},
        {"entityType": "invoice", "type": ["invoice.created", "invoice.finalized"]},
    ],
)
async def test_several_types_merge_their_index_ranges(
    client: httpx.AsyncClient,
    db: Database,
    tenant_a: TenantHandle,
    tenant_b: TenantHandle,
    params: dict[str, Any],
) -> None:
    await _seed(client, tenant_a)
    await _seed(client, tenant_b)
    first = await _plan_of_list(client, db, tenant_a, {**params, "limit": "2"})
    cursor = first.body["pagination"]["nextCursor"]
    deep = await _plan_of_list(client, db, tenant_a, {**params, "limit": "2", "cursor": cursor})
    assert len(first.body["data"]) == len(deep.body["data"]) == 2
    for page in (first, deep):
        assert page.plan.lstrip().startswith("Limit"), page.plan
        assert "Merge Append" in page.plan, page.plan
        assert not has_sort(page.plan), page.plan
        scans = [line for line in page.plan.splitlines() if "Index Scan Backward" in line]
        assert scans, page.plan
        assert all("ix_events_tenant_type" in line for line in scans), page.plan
    conditions = [line for line in deep.plan.splitlines() if "Index Cond" in line]
    assert conditions, deep.plan
    assert all("ROW(occurred_at, id) <" in line for line in conditions), deep.plan


async def _plan_of_list(
    client: httpx.AsyncClient, db: Database, tenant: TenantHandle, params: dict[str, str]
) -> Explained:
    return await explain_page(db, tenant.id, "events", list_events(client, tenant, params))
