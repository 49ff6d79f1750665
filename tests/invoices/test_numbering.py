"""Invoice numbers: `{prefix}-{YYYY}-{NNNNN}`, per tenant and year, unique and gap-free."""

import asyncio
import re
from typing import Any

import httpx

from tests.conftest import TenantHandle, make_customer, make_invoice
from tests.invoices.support import act, act_ok, fetch, invoice_in, list_invoices
from tests.problems import assert_problem

NUMBER = re.compile(r"^(?P<prefix>[A-Z]+)-(?P<year>\d{4})-(?P<seq>\d{5})$")


def _sequence(invoice: dict[str, Any], prefix: str) -> int:
    """The invoice's place in its sequence, after checking the number's whole format."""
    match = NUMBER.match(invoice["number"])
    assert match is not None, invoice["number"]
    assert match["prefix"] == prefix
    # The year is the year the number was issued in, i.e. of finalizedAt.
    assert match["year"] == invoice["finalizedAt"][:4]
    return int(match["seq"])


async def test_format_and_independent_sequences_per_tenant(
    client: httpx.AsyncClient, tenant_a: TenantHandle, tenant_b: TenantHandle
) -> None:
    acme = await make_customer(client, tenant_a)
    globex = await make_customer(client, tenant_b)
    order = [(tenant_a, acme, "INV"), (tenant_b, globex, "GLX")] * 2 + [(tenant_a, acme, "INV")]
    issued: dict[str, list[int]] = {"INV": [], "GLX": []}
    for tenant, customer, prefix in order:
        draft = await make_invoice(client, tenant, customer["id"])
        assert draft["number"] is None
        invoice = await act_ok(client, tenant, draft["id"], "finalize")
        issued[prefix].append(_sequence(invoice, prefix))
        assert (await fetch(client, tenant, draft["id"]))["number"] == invoice["number"]
    assert issued == {"INV": [1, 2, 3], "GLX": [1, 2]}


async def test_fifty_concurrent_finalizes_are_numbered_without_gap_or_duplicate(
    client: httpx.AsyncClient, tenant_a: TenantHandle, tenant_b: TenantHandle
) -> None:
    customers = [await make_customer(client, tenant_a, f"C{n}") for n in range(3)]
    drafts = [await make_invoice(client, tenant_a, customers[n % 3]["id"]) for n in range(50)]
    theirs = await make_customer(client, tenant_b)
    their_drafts = [await make_invoice(client, tenant_b, theirs["id"]) for _ in range(10)]

    # Tenant B finalizes at the same time: its sequence must not borrow from A's.
    responses = await asyncio.gather(
        *(act(client, tenant_a, d["id"], "finalize") for d in drafts),
        *(act(client, tenant_b, d["id"], "finalize") for d in their_drafts),
    )
    assert [r.status_code for r in responses] == [200] * 60, [r.text for r in responses]
    ours = sorted(_sequence(r.json(), "INV") for r in responses[:50])
    assert ours == list(range(1, 51))
    assert sorted(_sequence(r.json(), "GLX") for r in responses[50:]) == list(range(1, 11))
    # What was returned is what was stored.
    stored = await list_invoices(client, tenant_a, {"status": "open", "pageSize": "100"})
    assert {row["id"]: row["number"] for row in stored["data"]} == {
        r.json()["id"]: r.json()["number"] for r in responses[:50]
    }


async def test_concurrent_finalizes_of_one_draft_issue_one_number(
    client: httpx.AsyncClient, tenant_a: TenantHandle
) -> None:
    customer = await make_customer(client, tenant_a)
    draft = await make_invoice(client, tenant_a, customer["id"])
    responses = await asyncio.gather(
        *(act(client, tenant_a, draft["id"], "finalize") for _ in range(8))
    )
    winners = [r for r in responses if r.status_code == 200]
    assert len(winners) == 1, [r.text for r in responses]
    for response in responses:
        if response.status_code != 200:
            assert_problem(response, 409, "invalid_invoice_transition")
    assert _sequence(winners[0].json(), "INV") == 1
    following = await invoice_in(client, tenant_a, customer["id"], "open")
    assert _sequence(following, "INV") == 2


async def test_a_failed_finalize_consumes_no_number(
    client: httpx.AsyncClient, tenant_a: TenantHandle
) -> None:
    leaving = await make_customer(client, tenant_a, "Leaving")
    staying = await make_customer(client, tenant_a, "Staying")
    orphan = await make_invoice(client, tenant_a, leaving["id"])
    # A customer with only drafts can be deleted; its drafts then cannot be issued.
    response = await client.delete(f"/api/customers/{leaving['id']}", headers=tenant_a.headers)
    assert response.status_code == 204, response.text

    assert_problem(await act(client, tenant_a, orphan["id"], "finalize"), 409, "customer_deleted")
    assert await fetch(client, tenant_a, orphan["id"]) == orphan

    first = await invoice_in(client, tenant_a, staying["id"], "open")
    assert _sequence(first, "INV") == 1
    # Refused as a transition: no number taken either.
    response = await act(client, tenant_a, first["id"], "finalize")
    assert_problem(response, 409, "invalid_invoice_transition")

    # Moving the draft to a live customer makes it issuable, with the next number.
    response = await client.patch(
        f"/api/invoices/{orphan['id']}",
        json={"customerId": staying["id"]},
        headers=tenant_a.headers,
    )
    assert response.status_code == 200, response.text
    second = await act_ok(client, tenant_a, orphan["id"], "finalize")
    assert _sequence(second, "INV") == 2


async def test_deleted_drafts_leave_no_hole(
    client: httpx.AsyncClient, tenant_a: TenantHandle
) -> None:
    customer = await make_customer(client, tenant_a)
    doomed = await make_invoice(client, tenant_a, customer["id"])
    response = await client.delete(f"/api/invoices/{doomed['id']}", headers=tenant_a.headers)
    assert response.status_code == 204
    invoice = await invoice_in(client, tenant_a, customer["id"], "open")
    assert _sequence(invoice, "INV") == 1
