"""The credit note, refund and balance routes' answers to what they refuse, and what a
refusal leaves behind: nothing. Through the ASGI app; no worker runs."""

from typing import Any

import httpx
import pytest

from tests.conftest import TenantHandle, get_ok, make_customer, make_invoice, make_tenant
from tests.credits.support import issue, issued, item_line, ledger
from tests.payments.support import open_invoice, pay
from tests.problems import assert_problem, error_fields

TOTAL = "277.50"
SUPPORT = "55.50"


@pytest.fixture
async def tenant(client: httpx.AsyncClient, admin: dict[str, str]) -> TenantHandle:
    return await make_tenant(client, admin, "Acme", defaultTaxRate="11")


async def unchanged(
    client: httpx.AsyncClient, tenant: TenantHandle, invoice: dict[str, Any]
) -> None:
    after = await get_ok(client, tenant, f"/api/invoices/{invoice['id']}")
    assert (after["amountDue"], after["creditedAmount"], after["updatedAt"]) == (
        invoice["amountDue"],
        invoice["creditedAmount"],
        invoice["updatedAt"],
    )
    notes = await get_ok(client, tenant, "/api/credit-notes", {"invoiceId": invoice["id"]})
    assert notes["data"] == []


async def test_only_open_paid_or_uncollectible_invoices_take_credit_notes(
    client: httpx.AsyncClient, tenant: TenantHandle
) -> None:
    customer = await make_customer(client, tenant)
    draft = await make_invoice(client, tenant, customer["id"])
    response = await issue(client, tenant, draft["id"], [item_line(draft, 0, quantity="1")])
    assert_problem(response, 409, "invoice_not_creditable")
    voided = await make_invoice(client, tenant, customer["id"], finalize=True)
    assert (
        await client.post(f"/api/invoices/{voided['id']}/void", headers=tenant.headers)
    ).is_success
    response = await issue(client, tenant, voided["id"], [item_line(voided, 0, quantity="1")])
    assert_problem(response, 409, "invoice_not_creditable")
    uncollectible = await make_invoice(client, tenant, customer["id"], finalize=True)
    marked = await client.post(
        f"/api/invoices/{uncollectible['id']}/mark-uncollectible", headers=tenant.headers
    )
    assert marked.is_success
    note = await issued(
        client, tenant, uncollectible["id"], [item_line(uncollectible, 1, quantity="1")]
    )
    assert note["prePaymentAmount"] == SUPPORT


async def test_lines_never_credit_more_than_is_left(
    client: httpx.AsyncClient, tenant: TenantHandle
) -> None:
    invoice = await open_invoice(client, tenant, TOTAL)
    too_many = await issue(client, tenant, invoice["id"], [item_line(invoice, 0, quantity="3")])
    assert_problem(too_many, 409, "amount_exceeds_creditable")
    # Two lines of one item together take more than it has.
    twice = await issue(
        client,
        tenant,
        invoice["id"],
        [item_line(invoice, 1, quantity="1"), item_line(invoice, 1, amount="0.01")],
    )
    assert_problem(twice, 409, "amount_exceeds_creditable")
    free = await issue(
        client, tenant, invoice["id"], [{"description": "Goodwill", "amount": "277.51"}]
    )
    assert_problem(free, 409, "amount_exceeds_creditable")
    await unchanged(client, tenant, invoice)
    # A quantity once credited is gone.
    await issued(client, tenant, invoice["id"], [item_line(invoice, 0, quantity="1.5")])
    rest = await issue(client, tenant, invoice["id"], [item_line(invoice, 0, quantity="0.6")])
    assert_problem(rest, 409, "amount_exceeds_creditable")


@pytest.mark.parametrize(
    ("line", "field"),
    [
        ({"quantity": "1"}, "lines[0]"),
        ({"invoiceItemId": None, "amount": "1"}, "lines[0]"),
        ({"description": "x", "amount": "1.001"}, "lines[0].amount"),
        ({"description": "x", "amount": "-1"}, "lines.0.amount"),
        ({"description": "x", "amount": "1", "taxRate": "101"}, "lines.0.taxRate"),
    ],
)
async def test_malformed_lines_are_422_and_change_nothing(
    client: httpx.AsyncClient, tenant: TenantHandle, line: dict[str, Any], field: str
) -> None:
    invoice = await open_invoice(client, tenant, TOTAL)
    response = await issue(client, tenant, invoice["id"], [line])
    body = assert_problem(response, 422, "validation_failed")
    assert any(f.startswith(field.split(".")[0]) for f in error_fields(body)), body
    await unchanged(client, tenant, invoice)


async def test_an_item_line_takes_quantity_or_amount_never_both(
    client: httpx.AsyncClient, tenant: TenantHandle
) -> None:
    invoice = await open_invoice(client, tenant, TOTAL)
    both = await issue(
        client, tenant, invoice["id"], [item_line(invoice, 0, quantity="1", amount="1")]
    )
    assert_problem(both, 422, "validation_failed")
    foreign = await issue(
        client,
        tenant,
        invoice["id"],
        [{"invoiceItemId": "01a23cc3-fc4e-778c-b8c7-291cd517a973", "quantity": "1"}],
    )
    assert "lines[0].invoiceItemId" in error_fields(
        assert_problem(foreign, 422, "validation_failed")
    )


async def test_the_post_payment_split_must_add_up(
    client: httpx.AsyncClient, tenant: TenantHandle
) -> None:
    invoice = await open_invoice(client, tenant, TOTAL)
    # Unpaid: the whole note is pre-payment, nothing is left to split.
    response = await issue(
        client, tenant, invoice["id"], [item_line(invoice, 1, quantity="1")], creditAmount="1"
    )
    body = assert_problem(response, 422, "credit_note_amounts_mismatch")
    assert "refundAmount" in error_fields(body)
    await unchanged(client, tenant, invoice)


async def test_payments_on_their_way_are_not_credited(
    client: httpx.AsyncClient, tenant: TenantHandle
) -> None:
    invoice = await open_invoice(client, tenant, TOTAL)
    assert (await pay(client, tenant, invoice["id"], "250", token="tok_pending")).status_code == 201
    # 27.50 is owed beyond the pending payment; the rest of the note must be split, and
    # nothing has been paid that could be refunded.
    response = await issue(
        client, tenant, invoice["id"], [item_line(invoice, 1, quantity="1")], refundAmount="28.00"
    )
    assert_problem(response, 409, "amount_exceeds_refundable")
    note = await issued(
        client,
        tenant,
        invoice["id"],
        [item_line(invoice, 1, quantity="1")],
        outOfBandAmount="28.00",
    )
    assert (note["prePaymentAmount"], note["outOfBandAmount"]) == ("27.50", "28.00")


async def test_preview_answers_the_note_and_keeps_nothing(
    client: httpx.AsyncClient, tenant: TenantHandle
) -> None:
    invoice = await open_invoice(client, tenant, TOTAL)
    body = {"invoiceId": invoice["id"], "lines": [item_line(invoice, 1, quantity="1")]}
    preview = await client.post("/api/credit-notes/preview", json=body, headers=tenant.headers)
    assert preview.status_code == 200, preview.text
    assert (preview.json()["number"], preview.json()["total"]) == (
        f"{invoice['number']}-CN-01",
        SUPPORT,
    )
    await unchanged(client, tenant, invoice)
    events = await get_ok(client, tenant, "/api/events", {"type": "credit_note.*"})
    assert events["data"] == []
    real = await issued(client, tenant, invoice["id"], body["lines"])
    assert real["number"] == preview.json()["number"]
    assert real["id"] != preview.json()["id"]


async def test_refunds_need_a_succeeded_payment(
    client: httpx.AsyncClient, tenant: TenantHandle
) -> None:
    invoice = await open_invoice(client, tenant, TOTAL)
    payment = (await pay(client, tenant, invoice["id"], TOTAL, token="tok_pending")).json()
    response = await client.post(
        "/api/refunds", json={"paymentId": payment["id"]}, headers=tenant.headers
    )
    assert_problem(response, 409, "payment_not_refundable")
    unknown = await client.post(
        "/api/refunds",
        json={"paymentId": "01a23cc3-fc4e-778c-b8c7-291cd517a973"},
        headers=tenant.headers,
    )
    assert_problem(unknown, 404, "payment_not_found")


async def test_adjustments_never_take_the_balance_below_zero(
    client: httpx.AsyncClient, tenant: TenantHandle
) -> None:
    customer = await make_customer(client, tenant)
    path = f"/api/customers/{customer['id']}/balance-transactions"
    below = await client.post(
        path, json={"currency": "USD", "amount": "-0.01"}, headers=tenant.headers
    )
    assert_problem(below, 409, "insufficient_balance")
    zero = await client.post(path, json={"currency": "USD", "amount": "0"}, headers=tenant.headers)
    assert_problem(zero, 422, "validation_failed")
    fine = await client.post(
        path, json={"currency": "JPY", "amount": "1.5"}, headers=tenant.headers
    )
    assert "amount" in error_fields(assert_problem(fine, 422, "validation_failed"))
    added = await client.post(
        path,
        json={"currency": "eur", "amount": "20", "description": "Goodwill"},
        headers=tenant.headers,
    )
    assert added.status_code == 201, added.text
    assert (added.json()["type"], added.json()["amount"], added.json()["balanceAfter"]) == (
        "adjustment",
        "20.00",
        "20.00",
    )
    taken = await client.post(
        path, json={"currency": "EUR", "amount": "-7.5"}, headers=tenant.headers
    )
    assert taken.json()["balanceAfter"] == "12.50"
    holder = await get_ok(client, tenant, f"/api/customers/{customer['id']}")
    assert holder["balances"] == {"EUR": "12.50"}
    entries = await ledger(client, tenant, customer["id"])
    assert [e["balanceAfter"] for e in entries] == ["12.50", "20.00"]
    assert entries[1]["description"] == "Goodwill"


async def test_a_customer_without_credit_has_no_balances(
    client: httpx.AsyncClient, tenant: TenantHandle
) -> None:
    customer = await make_customer(client, tenant)
    assert customer["balances"] == {}
    listed = await get_ok(client, tenant, "/api/customers")
    assert listed["data"][0]["balances"] == {}
    invoice = await open_invoice(client, tenant, TOTAL)
    assert (invoice["appliedBalance"], invoice["creditedAmount"], invoice["amountRefunded"]) == (
        "0.00",
        "0.00",
        "0.00",
    )
    assert invoice["paidOutOfBand"] is False
