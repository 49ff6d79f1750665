"""List filters: each narrows to exactly the invoices it names; bad values are 422."""

from typing import Any

import httpx

from tests.conftest import TenantHandle, make_customer, make_invoice
from tests.invoices.support import invoice_in, item, listed_ids
from tests.problems import assert_problem, error_fields


async def test_status_is_repeatable(client: httpx.AsyncClient, tenant_a: TenantHandle) -> None:
    customer = await make_customer(client, tenant_a)
    by_status = {
        status: (await invoice_in(client, tenant_a, customer["id"], status))["id"]
        for status in ("draft", "open", "paid", "void", "uncollectible")
    }
    for wanted in (["open"], ["open", "paid"], ["draft", "void", "uncollectible"]):
        ids = await listed_ids(client, tenant_a, [("status", s) for s in wanted])
        assert sorted(ids) == sorted(by_status[s] for s in wanted), wanted
        # The comma-separated form selects the same.
        joined = await listed_ids(client, tenant_a, [("status", ",".join(wanted))])
        assert sorted(joined) == sorted(ids), wanted
    assert len(await listed_ids(client, tenant_a)) == 5


async def test_customer_currency_and_dates(
    client: httpx.AsyncClient, tenant_a: TenantHandle
) -> None:
    ada = await make_customer(client, tenant_a)
    bob = await make_customer(client, tenant_a, "Bob")
    jan = await make_invoice(
        client, tenant_a, ada["id"], issueDate="2026-01-10", dueDate="2026-02-09"
    )
    feb = await make_invoice(
        client,
        tenant_a,
        bob["id"],
        currency="EUR",
        issueDate="2026-02-10",
        dueDate="2026-02-28",
    )
    mar = await make_invoice(
        client, tenant_a, ada["id"], issueDate="2026-03-01", dueDate="2026-03-31"
    )
    cases: list[tuple[list[tuple[str, str]], list[dict[str, Any]]]] = [
        ([("customerId", ada["id"])], [jan, mar]),
        ([("customerId", bob["id"])], [feb]),
        ([("currency", "EUR")], [feb]),
        ([("currency", "usd")], [jan, mar]),
        ([("currency", "JPY")], []),
        ([("issueDateFrom", "2026-02-10")], [feb, mar]),
        ([("issueDateTo", "2026-02-10")], [jan, feb]),
        ([("issueDateFrom", "2026-01-11"), ("issueDateTo", "2026-02-28")], [feb]),
        ([("dueDateFrom", "2026-02-28")], [feb, mar]),
        ([("dueDateTo", "2026-02-09")], [jan]),
        ([("dueDateFrom", "2026-02-10"), ("dueDateTo", "2026-03-30")], [feb]),
        ([("customerId", ada["id"]), ("issueDateFrom", "2026-02-01")], [mar]),
    ]
    for params, wanted in cases:
        ids = await listed_ids(client, tenant_a, params)
        assert sorted(ids) == sorted(i["id"] for i in wanted), params


async def test_overdue_filter(client: httpx.AsyncClient, tenant_a: TenantHandle) -> None:
    customer = await make_customer(client, tenant_a)
    past = {"issueDate": "2020-01-01", "dueDate": "2020-01-31"}
    late = await invoice_in(client, tenant_a, customer["id"], "open", **past)
    for status in ("draft", "void", "uncollectible"):
        await invoice_in(client, tenant_a, customer["id"], status, **past)
    await invoice_in(client, tenant_a, customer["id"], "open")
    assert await listed_ids(client, tenant_a, [("overdue", "true")]) == [late["id"]]
    assert await listed_ids(client, tenant_a, [("overdue", "true"), ("status", "open")]) == [
        late["id"]
    ]
    assert len(await listed_ids(client, tenant_a, [("overdue", "false")])) == 4


async def test_total_bounds_are_in_each_invoices_own_currency(
    client: httpx.AsyncClient, tenant_a: TenantHandle
) -> None:
    customer = await make_customer(client, tenant_a)
    yen = await make_invoice(client, tenant_a, customer["id"], currency="JPY", items=[item("1000")])
    usd = await make_invoice(client, tenant_a, customer["id"], items=[item("10")])
    dinar = await make_invoice(client, tenant_a, customer["id"], currency="KWD", items=[item("10")])
    assert (yen["total"], usd["total"], dinar["total"]) == ("1000", "10.00", "10.000")
    cases: list[tuple[list[tuple[str, str]], list[dict[str, Any]]]] = [
        # 1000 JPY and 10.00 USD store the same integer: the bound must not compare those.
        ([("minTotal", "10")], [yen, usd, dinar]),
        ([("minTotal", "10.01")], [yen]),
        ([("minTotal", "10.001")], [yen]),
        ([("maxTotal", "10")], [usd, dinar]),
        ([("maxTotal", "9.99")], []),
        ([("maxTotal", "1000")], [yen, usd, dinar]),
        ([("minTotal", "10"), ("maxTotal", "10")], [usd, dinar]),
        ([("minTotal", "11"), ("maxTotal", "999")], []),
        ([("minTotal", "1000"), ("currency", "JPY")], [yen]),
        ([("minTotal", "1000"), ("currency", "USD")], []),
        ([("maxTotal", "10.00"), ("currency", "USD")], [usd]),
        # Finer than the minor unit: "at most 9.999 USD" excludes 10.00, includes nothing.
        ([("maxTotal", "9.999"), ("currency", "USD")], []),
        ([("minTotal", "9.999"), ("currency", "USD")], [usd]),
    ]
    for params, wanted in cases:
        ids = await listed_ids(client, tenant_a, params)
        assert sorted(ids) == sorted(i["id"] for i in wanted), params


async def test_search_by_number_or_customer_name(
    client: httpx.AsyncClient, tenant_a: TenantHandle, tenant_b: TenantHandle
) -> None:
    ada = await make_customer(client, tenant_a, "Ada Lovelace")
    pure = await make_customer(client, tenant_a, "100% Pure_Water")
    plain = await make_customer(client, tenant_a, "1000 Pure Water")
    slash = await make_customer(client, tenant_a, "Back\\Slash")
    numbered = await invoice_in(client, tenant_a, ada["id"], "open")
    draft = await make_invoice(client, tenant_a, ada["id"])
    percent = await make_invoice(client, tenant_a, pure["id"])
    other = await make_invoice(client, tenant_a, plain["id"])
    backslash = await make_invoice(client, tenant_a, slash["id"])
    theirs = await make_customer(client, tenant_b, "Ada Lovelace")
    await invoice_in(client, tenant_b, theirs["id"], "open")
    sequence = numbered["number"].rsplit("-", 1)[1]

    cases: list[tuple[str, list[dict[str, Any]]]] = [
        ("ada", [numbered, draft]),
        ("LOVELACE", [numbered, draft]),
        ("aDa lOvE", [numbered, draft]),
        (numbered["number"].lower(), [numbered]),
        (f"-{sequence}", [numbered]),
        ("inv-", [numbered]),
        # % and _ are literal characters, not wildcards.
        ("%", [percent]),
        ("100%", [percent]),
        ("0%", [percent]),
        ("_", [percent]),
        ("pure_", [percent]),
        ("pure water", [other]),
        ("\\", [backslash]),
        ("k\\s", [backslash]),
        ("nobody", []),
    ]
    for search, wanted in cases:
        ids = await listed_ids(client, tenant_a, [("search", search)])
        assert sorted(ids) == sorted(i["id"] for i in wanted), search


async def test_filters_never_reach_another_tenant(
    client: httpx.AsyncClient, tenant_a: TenantHandle, tenant_b: TenantHandle
) -> None:
    theirs = await make_customer(client, tenant_b)
    await invoice_in(client, tenant_b, theirs["id"], "open")
    mine = await make_customer(client, tenant_a)
    own = await make_invoice(client, tenant_a, mine["id"])
    assert await listed_ids(client, tenant_a) == [own["id"]]
    assert await listed_ids(client, tenant_a, [("customerId", theirs["id"])]) == []
    assert await listed_ids(client, tenant_a, [("search", "GLX")]) == []
    assert await listed_ids(client, tenant_a, [("currency", "EUR")]) == []


async def test_bad_filter_values_are_422(client: httpx.AsyncClient, tenant_a: TenantHandle) -> None:
    cases: list[tuple[list[tuple[str, str]], str]] = [
        ([("status", "bogus")], "status"),
        ([("status", "open"), ("status", "OPEN")], "status"),
        ([("status", "open,bogus")], "status"),
        ([("sort", "bogus")], "sort"),
        ([("sort", "created_at")], "sort"),
        ([("customerId", "nope")], "customerId"),
        ([("currency", "XYZ")], "currency"),
        ([("overdue", "maybe")], "overdue"),
        ([("issueDateFrom", "2026-13-01")], "issueDateFrom"),
        ([("issueDateTo", "2026-02-30")], "issueDateTo"),
        ([("dueDateFrom", "01/02/2026")], "dueDateFrom"),
        ([("dueDateTo", "1767225600")], "dueDateTo"),
        ([("minTotal", "abc")], "minTotal"),
        ([("minTotal", "NaN")], "minTotal"),
        ([("maxTotal", "1.00001")], "maxTotal"),
        ([("maxTotal", "1e30")], "maxTotal"),
        ([("search", "")], "search"),
        ([("search", "x" * 201)], "search"),
        ([("pageSize", "0")], "pageSize"),
        ([("pageSize", "101")], "pageSize"),
    ]
    for params, field in cases:
        query = httpx.QueryParams(tuple(params))
        response = await client.get("/api/invoices", params=query, headers=tenant_a.headers)
        problem = assert_problem(response, 422, "validation_failed")
        assert error_fields(problem) == {field}, params
