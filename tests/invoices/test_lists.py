"""Listing invoices: offset pages, cursor walks in every sort order, and cursor stability."""

import base64
import random
import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import httpx
import orjson
import pytest

from tests.conftest import TenantHandle, make_customer, make_invoice
from tests.invoices.support import act_ok, item, list_invoices
from tests.problems import assert_problem, error_fields

SORTS = ["createdAt", "-createdAt", "dueDate", "-dueDate", "total", "-total", "number", "-number"]
DUE_DATES = ["2026-02-01", "2026-03-01", "2026-01-15"]
PRICES = ["5", "20", "12.5", "5", "7.25"]


def _value(invoice: dict[str, Any], field: str) -> Any:
    if field == "createdAt":
        return datetime.fromisoformat(invoice["createdAt"])
    if field == "dueDate":
        return date.fromisoformat(invoice["dueDate"])
    if field == "total":
        return Decimal(invoice["total"])  # one currency in these tests
    return invoice["number"]


def expected_order(invoices: list[dict[str, Any]], sort: str) -> list[str]:
    """The order API.md asks for, ties broken by id, and drafts' null numbers last either way."""
    field, descending = sort.lstrip("-"), sort.startswith("-")
    present = [i for i in invoices if _value(i, field) is not None]
    absent = [i for i in invoices if _value(i, field) is None]
    present.sort(key=lambda i: (_value(i, field), uuid.UUID(i["id"])), reverse=descending)
    absent.sort(key=lambda i: uuid.UUID(i["id"]), reverse=descending)
    return [i["id"] for i in present + absent]


async def seed(
    client: httpx.AsyncClient, tenant: TenantHandle, count: int, *, rng: random.Random
) -> list[str]:
    """`count` invoices with tied totals and due dates; about two thirds finalized, in an
    order unrelated to creation so that number order is not creation order."""
    customer = await make_customer(client, tenant)
    ids = []
    for n in range(count):
        invoice = await make_invoice(
            client,
            tenant,
            customer["id"],
            issueDate="2026-01-01",
            dueDate=DUE_DATES[n % len(DUE_DATES)],
            items=[item(PRICES[n % len(PRICES)])],
        )
        ids.append(invoice["id"])
    for invoice_id in rng.sample(ids, k=count * 2 // 3):
        await act_ok(client, tenant, invoice_id, "finalize")
    return ids


async def walk(
    client: httpx.AsyncClient, tenant: TenantHandle, sort: str, limit: int
) -> list[dict[str, Any]]:
    """Every row, following nextCursor from the first page to the last."""
    rows: list[dict[str, Any]] = []
    params: dict[str, str] = {"sort": sort, "limit": str(limit)}
    while True:
        body = await list_invoices(client, tenant, params)
        page = body["pagination"]
        assert set(page) == {"limit", "hasMore", "nextCursor"}
        assert page["limit"] == limit
        assert len(body["data"]) <= limit
        rows.extend(body["data"])
        if not page["hasMore"]:
            assert page["nextCursor"] is None
            return rows
        assert len(body["data"]) == limit
        params = {"sort": sort, "limit": str(limit), "cursor": page["nextCursor"]}


async def test_cursor_walk_visits_every_row_once_in_each_sort_order(
    client: httpx.AsyncClient, tenant_a: TenantHandle, tenant_b: TenantHandle
) -> None:
    ids = await seed(client, tenant_a, 23, rng=random.Random(7))
    other = await make_customer(client, tenant_b)
    await make_invoice(client, tenant_b, other["id"], items=[item("5")])
    everything = await walk(client, tenant_a, "createdAt", 100)
    assert sorted(row["id"] for row in everything) == sorted(ids)
    assert sum(row["number"] is None for row in everything) == 23 - 15

    for sort in SORTS:
        expected = expected_order(everything, sort)
        assert [row["id"] for row in await walk(client, tenant_a, sort, 7)] == expected, sort
        # Offset pages come in the same order.
        offset: list[str] = []
        for page in (1, 2, 3, 4):
            params = {"sort": sort, "page": str(page), "pageSize": "7"}
            offset += [row["id"] for row in (await list_invoices(client, tenant_a, params))["data"]]
        assert offset == expected, sort

    # The default order is newest first.
    default = await list_invoices(client, tenant_a, {"limit": "100"})
    assert [row["id"] for row in default["data"]] == expected_order(everything, "-createdAt")


async def test_last_page_exactly_full_has_no_next_cursor(
    client: httpx.AsyncClient, tenant_a: TenantHandle
) -> None:
    await seed(client, tenant_a, 6, rng=random.Random(1))
    rows = await walk(client, tenant_a, "-total", 3)
    assert len(rows) == 6
    first = await list_invoices(client, tenant_a, {"limit": "6"})
    assert first["pagination"] == {"limit": 6, "hasMore": False, "nextCursor": None}


async def test_offset_pagination(client: httpx.AsyncClient, tenant_a: TenantHandle) -> None:
    await seed(client, tenant_a, 12, rng=random.Random(2))
    pages = []
    for page in (1, 2, 3, 4):
        params = {"page": str(page), "pageSize": "5", "includeTotal": "true"}
        pages.append(await list_invoices(client, tenant_a, params))
    assert [len(p["data"]) for p in pages] == [5, 5, 2, 0]
    assert [p["pagination"] for p in pages] == [
        {"page": n, "pageSize": 5, "hasMore": n < 3, "totalCount": 12} for n in (1, 2, 3, 4)
    ]
    ids = [row["id"] for p in pages for row in p["data"]]
    assert len(set(ids)) == 12

    default = await list_invoices(client, tenant_a)
    assert default["pagination"] == {"page": 1, "pageSize": 10, "hasMore": True}
    assert [row["id"] for row in default["data"]] == ids[:10]
    filtered = await list_invoices(
        client, tenant_a, {"status": "draft", "includeTotal": "true", "pageSize": "1"}
    )
    assert filtered["pagination"]["totalCount"] == 12 - 8
    assert filtered["pagination"]["hasMore"] is True


@pytest.mark.parametrize("sort", ["createdAt", "-createdAt", "total", "-total", "-number"])
async def test_cursor_walk_is_stable_under_inserts(
    client: httpx.AsyncClient, tenant_a: TenantHandle, sort: str
) -> None:
    rng = random.Random(sort)
    before = set(await seed(client, tenant_a, 14, rng=rng))
    customer = await make_customer(client, tenant_a)
    params = {"sort": sort, "limit": "5"}
    seen: list[dict[str, Any]] = []
    inserted: list[str] = []
    for step in range(100):
        body = await list_invoices(client, tenant_a, params)
        seen.extend(body["data"])
        if step == 1:
            # Mid-walk: new rows land before, among and after the rows still to come.
            for price in ("1", "12.5", "20", "99"):
                invoice = await make_invoice(client, tenant_a, customer["id"], items=[item(price)])
                inserted.append(invoice["id"])
            await act_ok(client, tenant_a, inserted[1], "finalize")
        if not body["pagination"]["hasMore"]:
            break
        params = {**params, "cursor": body["pagination"]["nextCursor"]}
    ids = [row["id"] for row in seen]
    assert len(ids) == len(set(ids)), "a row came twice"
    assert before <= set(ids), "a row that existed all along was skipped"
    assert set(ids) <= before | set(inserted)
    # What the walk returned is in order (rows are as they were when their page was read).
    assert ids == expected_order(seen, sort)
    if sort == "createdAt":
        assert ids[-4:] == inserted
    if sort == "-createdAt":
        assert set(ids) == before


def _cursor(*parts: Any) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(list(parts))).decode().rstrip("=")


async def test_bad_paging_is_422(client: httpx.AsyncClient, tenant_a: TenantHandle) -> None:
    await seed(client, tenant_a, 3, rng=random.Random(3))
    first = await list_invoices(client, tenant_a, {"limit": "1", "sort": "dueDate"})
    cursor = first["pagination"]["nextCursor"]
    some_id = str(uuid.uuid4())
    cases: list[tuple[dict[str, str], str]] = [
        ({"page": "2", "cursor": cursor, "sort": "dueDate"}, "cursor"),
        ({"pageSize": "5", "limit": "5"}, "limit"),
        ({"limit": "0"}, "limit"),
        ({"limit": "101"}, "limit"),
        ({"page": "0"}, "page"),
        ({"pageSize": "0"}, "pageSize"),
        ({"pageSize": "101"}, "pageSize"),
        ({"page": "x"}, "page"),
        ({"cursor": cursor, "sort": "-dueDate"}, "cursor"),
        ({"cursor": cursor}, "cursor"),
        ({"cursor": "garbage"}, "cursor"),
        ({"cursor": "!!!!"}, "cursor"),
        ({"cursor": "x" * 1025}, "cursor"),
        ({"cursor": _cursor("dueDate", "2026-02-01")}, "cursor"),
        ({"cursor": _cursor("dueDate", "2026-02-30", some_id), "sort": "dueDate"}, "cursor"),
        ({"cursor": _cursor("dueDate", 20260201, some_id), "sort": "dueDate"}, "cursor"),
        ({"cursor": _cursor("dueDate", "2026-02-01", 7), "sort": "dueDate"}, "cursor"),
        ({"cursor": _cursor("dueDate", "2026-02-01", "nope"), "sort": "dueDate"}, "cursor"),
        ({"cursor": _cursor("dueDate", None, some_id), "sort": "dueDate"}, "cursor"),
        ({"cursor": _cursor("total", "5", some_id), "sort": "total"}, "cursor"),
        ({"cursor": _cursor("total", True, some_id), "sort": "total"}, "cursor"),
        ({"cursor": _cursor("total", 1.5, some_id), "sort": "total"}, "cursor"),
        ({"cursor": _cursor("total", 2**63, some_id), "sort": "total"}, "cursor"),
        ({"cursor": _cursor("number", "INV-2026-00005", some_id), "sort": "number"}, "cursor"),
        # A timestamp with no zone, or one that cannot be expressed in UTC.
        ({"cursor": _cursor("-createdAt", "2026-01-01T00:00:00", some_id)}, "cursor"),
        ({"cursor": _cursor("-createdAt", "0001-01-01T00:00:00+05:00", some_id)}, "cursor"),
        ({"cursor": _cursor("-createdAt", "yesterday", some_id)}, "cursor"),
    ]
    for params, field in cases:
        response = await client.get("/api/invoices", params=params, headers=tenant_a.headers)
        problem = assert_problem(response, 422, "validation_failed")
        assert error_fields(problem) == {field}, params


async def test_a_null_number_cursor_continues_among_the_drafts(
    client: httpx.AsyncClient, tenant_a: TenantHandle
) -> None:
    customer = await make_customer(client, tenant_a)
    drafts = [(await make_invoice(client, tenant_a, customer["id"]))["id"] for _ in range(5)]
    issued = await make_invoice(client, tenant_a, customer["id"], finalize=True)
    rows = await walk(client, tenant_a, "number", 2)
    assert [row["id"] for row in rows] == [issued["id"], *sorted(drafts, key=uuid.UUID)]
    rows = await walk(client, tenant_a, "-number", 2)
    assert [row["id"] for row in rows] == [issued["id"], *sorted(drafts, key=uuid.UUID)[::-1]]


async def test_cursor_pages_count_the_whole_list_when_asked(
    client: httpx.AsyncClient, tenant_a: TenantHandle
) -> None:
    await seed(client, tenant_a, 5, rng=random.Random(5))
    first = await list_invoices(client, tenant_a, {"limit": "2", "includeTotal": "true"})
    second = await list_invoices(
        client,
        tenant_a,
        {"limit": "2", "includeTotal": "true", "cursor": first["pagination"]["nextCursor"]},
    )
    # The count is of everything the filters match, not of what is left after the cursor.
    assert first["pagination"]["totalCount"] == second["pagination"]["totalCount"] == 5
    plain = await list_invoices(client, tenant_a, {"limit": "2"})
    assert "totalCount" not in plain["pagination"]


async def test_offset_pages_stop_at_row_ten_thousand(
    client: httpx.AsyncClient, tenant_a: TenantHandle
) -> None:
    await seed(client, tenant_a, 1, rng=random.Random(6))
    for params in (
        {"page": "1000"},
        {"page": "100", "pageSize": "100"},
        {"page": "10000", "pageSize": "1"},
    ):
        assert (await list_invoices(client, tenant_a, params))["data"] == [], params
    for path in ("/api/invoices", "/api/customers", "/api/payments"):
        for params in (
            {"page": "1001"},
            {"page": "101", "pageSize": "100"},
            {"page": "10001", "pageSize": "1"},
            {"page": str(10**30)},
        ):
            response = await client.get(path, params=params, headers=tenant_a.headers)
            problem = assert_problem(response, 422, "offset_too_deep")
            assert error_fields(problem) == {"page"}
            assert "cursor" in problem["detail"], problem
