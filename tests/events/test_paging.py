"""Paging through the event log: cursor walks that miss nothing and repeat nothing while
events keep arriving, and offset pages that agree with them."""

from typing import Any

import httpx
import pytest

from tests.conftest import TenantHandle, make_customer, make_invoice
from tests.events.support import all_events, list_events, newest_first
from tests.problems import assert_problem, error_fields

# The ways a list is read: the whole log, one index range, several merged, one entity type.
VIEWS: list[dict[str, Any]] = [
    {},
    {"type": "customer.created"},
    {"type": ["customer.*", "invoice.created"]},
    {"entityType": "customer"},
]


async def _seed(client: httpx.AsyncClient, tenant: TenantHandle, customers: int) -> None:
    """`customers` customers, every third renamed, and an invoice for every other one."""
    for n in range(customers):
        customer = await make_customer(client, tenant, f"Customer {n}")
        if n % 3 == 0:
            response = await client.patch(
                f"/api/customers/{customer['id']}",
                json={"name": f"Renamed {n}"},
                headers=tenant.headers,
            )
            assert response.status_code == 200, response.text
        if n % 2 == 0:
            await make_invoice(client, tenant, customer["id"])


async def _walk(
    client: httpx.AsyncClient,
    tenant: TenantHandle,
    params: dict[str, Any],
    limit: int,
    between_pages: Any = None,
) -> list[dict[str, Any]]:
    seen: list[dict[str, Any]] = []
    query = {**params, "limit": str(limit)}
    for step in range(1000):
        body = await list_events(client, tenant, query)
        assert len(body["data"]) <= limit
        assert body["pagination"].keys() == {"limit", "hasMore", "nextCursor"}
        seen.extend(body["data"])
        if between_pages is not None:
            await between_pages(step)
        if not body["pagination"]["hasMore"]:
            assert body["pagination"]["nextCursor"] is None
            return seen
        assert len(body["data"]) == limit
        query = {**query, "cursor": body["pagination"]["nextCursor"]}
    raise AssertionError("the walk never ended")


@pytest.mark.parametrize("params", VIEWS)
async def test_a_cursor_walk_sees_every_event_once_while_events_arrive(
    client: httpx.AsyncClient, tenant_a: TenantHandle, tenant_b: TenantHandle, params: Any
) -> None:
    await _seed(client, tenant_a, 62)
    await _seed(client, tenant_b, 3)
    everything = await _everything(client, tenant_a, params)
    assert len(everything) >= 62
    if not params:
        assert len(everything) > 100

    async def more_events(step: int) -> None:
        # New events between pages: a customer, its invoice, a rename.
        if step in (1, 4):
            customer = await make_customer(client, tenant_a, f"Late {step}")
            await make_invoice(client, tenant_a, customer["id"])
            await client.patch(
                f"/api/customers/{customer['id']}", json={"name": "Later"}, headers=tenant_a.headers
            )

    seen = await _walk(client, tenant_a, params, 9, more_events)
    ids = [event["id"] for event in seen]
    assert len(ids) == len(set(ids)), "an event came twice"
    # Newest first: what arrives during the walk is newer than its cursor, so the walk is
    # exactly the log as it was when it started.
    assert ids == [event["id"] for event in everything]
    assert ids == newest_first(seen)
    assert len(await _everything(client, tenant_a, params)) > len(everything)


async def _everything(
    client: httpx.AsyncClient, tenant: TenantHandle, params: dict[str, Any]
) -> list[dict[str, Any]]:
    """The whole list in offset pages of 100 (the walk's oracle)."""
    found: list[dict[str, Any]] = []
    for page in range(1, 100):
        body = await list_events(client, tenant, {**params, "page": page, "pageSize": "100"})
        found.extend(body["data"])
        if not body["pagination"]["hasMore"]:
            return found
    raise AssertionError("too many pages")


@pytest.mark.parametrize("params", VIEWS)
async def test_offset_and_cursor_pages_agree(
    client: httpx.AsyncClient, tenant_a: TenantHandle, params: Any
) -> None:
    await _seed(client, tenant_a, 9)
    # The newest events all of one type: a page deep in them is read from one index range.
    for n in range(6):
        await make_customer(client, tenant_a, f"Burst {n}")
    whole = await all_events(client, tenant_a, params)
    total = len(whole)
    assert total >= 15

    by_offset: list[dict[str, Any]] = []
    for page in range(1, 100):
        body = await list_events(client, tenant_a, {**params, "page": page, "pageSize": "4"})
        assert body["pagination"]["page"] == page
        counted = {**params, "page": page, "pageSize": "4", "includeTotal": "true"}
        assert await list_events(client, tenant_a, counted) == {
            "data": body["data"],
            "pagination": {**body["pagination"], "totalCount": total},
        }
        by_offset.extend(body["data"])
        if not body["pagination"]["hasMore"]:
            break
    assert by_offset == whole
    assert await _walk(client, tenant_a, params, 4) == whole
    # A last page exactly full says so, and the cursor count is of the whole list.
    exact = await list_events(client, tenant_a, {**params, "limit": str(total)})
    assert exact["pagination"] == {"limit": total, "hasMore": False, "nextCursor": None}
    first = await list_events(client, tenant_a, {**params, "limit": "2", "includeTotal": "true"})
    deeper = await list_events(
        client,
        tenant_a,
        {
            **params,
            "limit": "2",
            "includeTotal": "true",
            "cursor": first["pagination"]["nextCursor"],
        },
    )
    assert first["pagination"]["totalCount"] == deeper["pagination"]["totalCount"] == total
    assert first["data"] + deeper["data"] == whole[:4]
    # Offset paging answers with page and pageSize, defaulting to the first ten.
    default = await list_events(client, tenant_a, params)
    assert default["data"] == whole[:10]
    assert default["pagination"] == {"page": 1, "pageSize": 10, "hasMore": total > 10}


async def test_a_cursor_is_only_good_for_the_events_list(
    client: httpx.AsyncClient, tenant_a: TenantHandle
) -> None:
    customer = await make_customer(client, tenant_a)
    for _ in range(3):
        await make_invoice(client, tenant_a, customer["id"])
    invoices = await client.get("/api/invoices", params={"limit": 1}, headers=tenant_a.headers)
    foreign = invoices.json()["pagination"]["nextCursor"]
    assert foreign
    for cursor in (foreign, "garbage", "!!!!"):
        for params in ({}, {"type": ["invoice.*", "customer.*"]}):
            response = await client.get(
                "/api/events", params={**params, "cursor": cursor}, headers=tenant_a.headers
            )
            problem = assert_problem(response, 422, "validation_failed")
            assert error_fields(problem) == {"cursor"}


@pytest.mark.parametrize("types", [["customer.*", "invoice.*"], ["customer.created", "invoice.*"]])
async def test_a_page_one_short_of_the_end_knows_there_is_more(
    client: httpx.AsyncClient, tenant_a: TenantHandle, types: list[str]
) -> None:
    """Every event in one of the types asked for: that type alone tells whether there is a
    next page."""
    for n in range(5):
        await make_customer(client, tenant_a, f"Only {n}")
    whole = await all_events(client, tenant_a, {"type": types})
    assert len(whole) == 5
    first = await list_events(client, tenant_a, {"type": types, "limit": "4"})
    assert first["pagination"]["hasMore"] is True
    last = await list_events(
        client,
        tenant_a,
        {"type": types, "limit": "4", "cursor": first["pagination"]["nextCursor"]},
    )
    assert first["data"] + last["data"] == whole
    offset = await list_events(client, tenant_a, {"type": types, "pageSize": "4"})
    assert offset["pagination"]["hasMore"] is True
    assert offset["data"] == whole[:4]
