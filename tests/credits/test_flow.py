"""Credit notes, refunds and balances the whole way, as in production: requests over a real
socket, the outbox worker sending refunds to the simulated gateway, its signed webhooks
posted back to this same server. Nothing is stubbed; every wait polls."""

from collections.abc import AsyncIterator

import pytest

from tenvoice.config import Settings
from tenvoice.platform.db import Database
from tenvoice.platform.messages import EventHandlers
from tests.conftest import ADMIN_KEY, TenantHandle, get_ok, make_customer, make_invoice, make_tenant
from tests.credits.support import event_types, issued, item_line, ledger, settled_refund
from tests.live import LiveServer, live_server
from tests.payments.support import open_invoice
from tests.payments.test_flow import pay_through
from tests.problems import assert_problem

ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}"}
# STANDARD_ITEMS at 11 %: Consulting 200.00 + 22.00, Support 50.00 + 5.50.
TOTAL = "277.50"
SUPPORT = "55.50"


@pytest.fixture
async def live(
    settings: Settings, db: Database, event_handlers: EventHandlers
) -> AsyncIterator[LiveServer]:
    async with live_server(settings, db, event_handlers) as server:
        yield server


@pytest.fixture
async def tenant(live: LiveServer) -> TenantHandle:
    return await make_tenant(live.client, ADMIN, "Acme", defaultTaxRate="11")


async def test_an_open_invoice_owes_less_and_a_full_credit_settles_it(
    live: LiveServer, tenant: TenantHandle
) -> None:
    client = live.client
    invoice = await open_invoice(client, tenant, TOTAL)

    first = await issued(client, tenant, invoice["id"], [item_line(invoice, 1, quantity="1")])

    assert first["number"] == f"{invoice['number']}-CN-01"
    assert (first["total"], first["prePaymentAmount"], first["refundAmount"]) == (
        SUPPORT,
        SUPPORT,
        "0.00",
    )
    [line] = first["lines"]
    assert (line["quantity"], line["unitAmount"], line["taxRate"], line["tax"]) == (
        "1",
        "50.00",
        "11",
        "5.50",
    )
    after = await get_ok(client, tenant, f"/api/invoices/{invoice['id']}")
    assert (after["status"], after["creditedAmount"], after["amountDue"]) == (
        "open",
        SUPPORT,
        "222.00",
    )
    # The rest of the invoice, by amount: it settles the invoice out of band.
    second = await issued(client, tenant, invoice["id"], [item_line(invoice, 0, amount="200")])
    assert second["number"] == f"{invoice['number']}-CN-02"
    settled = await get_ok(client, tenant, f"/api/invoices/{invoice['id']}")
    assert (settled["status"], settled["paidOutOfBand"], settled["amountDue"]) == (
        "paid",
        True,
        "0.00",
    )
    assert settled["creditedAmount"] == TOTAL
    types = await event_types(client, tenant, invoice["id"])
    assert types[-3:] == ["credit_note.created", "credit_note.created", "invoice.paid"]
    paid = (await get_ok(client, tenant, "/api/events", {"type": "invoice.paid"}))["data"][0]
    assert paid["data"]["paidOutOfBand"] is True
    # Nothing is left to credit.
    more = await client.post(
        "/api/credit-notes",
        json={"invoiceId": invoice["id"], "lines": [{"description": "More", "amount": "1"}]},
        headers=tenant.headers,
    )
    assert_problem(more, 409, "amount_exceeds_creditable")


async def test_a_paid_invoice_is_refunded_through_the_gateway(
    live: LiveServer, tenant: TenantHandle
) -> None:
    client = live.client
    invoice = await open_invoice(client, tenant, TOTAL)
    payment = await pay_through(client, tenant, invoice["id"], TOTAL)

    note = await issued(
        client,
        tenant,
        invoice["id"],
        [item_line(invoice, 1, quantity="1")],
        refundAmount=SUPPORT,
        reason="product_unsatisfactory",
    )

    assert (note["prePaymentAmount"], note["refundAmount"], note["reason"]) == (
        "0.00",
        SUPPORT,
        "product_unsatisfactory",
    )
    [refund_id] = note["refundIds"]
    refund = await settled_refund(client, tenant, refund_id)
    assert (refund["status"], refund["amount"], refund["paymentId"], refund["creditNoteId"]) == (
        "succeeded",
        SUPPORT,
        payment["id"],
        note["id"],
    )
    assert refund["gatewayReference"].startswith("sim_re_")
    paid_back = await get_ok(client, tenant, f"/api/payments/{payment['id']}")
    assert paid_back["amountRefunded"] == SUPPORT
    after = await get_ok(client, tenant, f"/api/invoices/{invoice['id']}")
    assert (after["status"], after["amountPaid"], after["amountRefunded"]) == (
        "paid",
        TOTAL,
        SUPPORT,
    )
    assert (after["creditedAmount"], after["amountDue"]) == ("0.00", "0.00")
    types = await event_types(client, tenant, invoice["id"])
    assert types[-3:] == ["credit_note.created", "refund.created", "refund.succeeded"]
    # A refund went through: the credit note stands.
    void = await client.post(f"/api/credit-notes/{note['id']}/void", headers=tenant.headers)
    assert_problem(void, 409, "credit_note_not_voidable")
    # What is left of the payment can be refunded on its own.
    rest = await client.post(
        "/api/refunds", json={"paymentId": payment["id"]}, headers=tenant.headers
    )
    assert rest.status_code == 201, rest.text
    assert (rest.json()["amount"], rest.json()["creditNoteId"]) == ("222.00", None)
    again = await client.post(
        "/api/refunds", json={"paymentId": payment["id"], "amount": "0.01"}, headers=tenant.headers
    )
    assert_problem(again, 409, "amount_exceeds_refundable")
    assert (await settled_refund(client, tenant, rest.json()["id"]))["status"] == "succeeded"
    final = await get_ok(client, tenant, f"/api/invoices/{invoice['id']}")
    assert (final["status"], final["amountRefunded"]) == ("paid", TOTAL)


async def test_a_failed_refund_is_given_back_and_its_note_can_be_voided(
    live: LiveServer, tenant: TenantHandle
) -> None:
    client = live.client
    invoice = await open_invoice(client, tenant, TOTAL)
    payment = await pay_through(client, tenant, invoice["id"], TOTAL, "tok_refund_fails")
    assert payment["status"] == "succeeded"

    note = await issued(
        client, tenant, invoice["id"], [item_line(invoice, 1, quantity="1")], refundAmount=SUPPORT
    )

    refund = await settled_refund(client, tenant, note["refundIds"][0])
    assert (refund["status"], refund["failureCode"]) == ("failed", "refund_failed")
    assert refund["failedAt"] is not None
    after = await get_ok(client, tenant, f"/api/payments/{payment['id']}")
    assert after["amountRefunded"] == "0.00"
    voided = await client.post(f"/api/credit-notes/{note['id']}/void", headers=tenant.headers)
    assert voided.status_code == 200, voided.text
    assert (voided.json()["status"], voided.json()["refundIds"]) == ("void", [refund["id"]])
    assert voided.json()["voidedAt"] is not None
    types = await event_types(client, tenant, invoice["id"])
    assert types[-3:] == ["refund.created", "refund.failed", "credit_note.voided"]
    # Voided, its item can be credited again; numbers never reuse the voided one.
    again = await issued(
        client,
        tenant,
        invoice["id"],
        [item_line(invoice, 1, quantity="1")],
        outOfBandAmount=SUPPORT,
    )
    assert again["number"] == f"{invoice['number']}-CN-02"


async def test_credit_goes_to_the_balance_and_the_next_invoice_takes_it(
    live: LiveServer, tenant: TenantHandle
) -> None:
    client = live.client
    customer = await make_customer(client, tenant)
    invoice = await make_invoice(client, tenant, customer["id"], finalize=True)
    await pay_through(client, tenant, invoice["id"], TOTAL)

    note = await issued(
        client, tenant, invoice["id"], [item_line(invoice, 1, quantity="1")], creditAmount=SUPPORT
    )

    assert (note["creditAmount"], note["refundIds"]) == (SUPPORT, [])
    holder = await get_ok(client, tenant, f"/api/customers/{customer['id']}")
    assert holder["balances"] == {"USD": SUPPORT}
    # The next invoice in USD takes the credit when finalized.
    small = [{"description": "Tea", "quantity": "1", "unitPrice": "10"}]
    next_invoice = await make_invoice(client, tenant, customer["id"], items=small, finalize=True)
    assert (next_invoice["total"], next_invoice["appliedBalance"]) == ("11.10", "11.10")
    assert (next_invoice["status"], next_invoice["amountDue"]) == ("paid", "0.00")
    bigger = await make_invoice(client, tenant, customer["id"], finalize=True)
    assert (bigger["appliedBalance"], bigger["amountDue"]) == ("44.40", "233.10")
    entries = await ledger(client, tenant, customer["id"])
    assert [(e["type"], e["amount"], e["balanceAfter"]) for e in reversed(entries)] == [
        ("credit_note", SUPPORT, SUPPORT),
        ("applied_to_invoice", "-11.10", "44.40"),
        ("applied_to_invoice", "-44.40", "0.00"),
    ]
    assert entries[0]["invoiceId"] == bigger["id"]
    assert entries[-1]["creditNoteId"] == note["id"]
    # Its credit is spent: the note stands.
    void = await client.post(f"/api/credit-notes/{note['id']}/void", headers=tenant.headers)
    assert_problem(void, 409, "credit_note_not_voidable")
    # Voiding the open invoice gives back the credit it took.
    voided = await client.post(f"/api/invoices/{bigger['id']}/void", headers=tenant.headers)
    assert voided.status_code == 200, voided.text
    holder = await get_ok(client, tenant, f"/api/customers/{customer['id']}")
    assert holder["balances"] == {"USD": "44.40"}
    changes = await get_ok(
        client, tenant, "/api/events", {"type": "customer.balance_changed", "limit": 10}
    )
    assert [e["data"]["type"] for e in changes["data"]] == [
        "unapplied_from_invoice",
        "applied_to_invoice",
        "applied_to_invoice",
        "credit_note",
    ]
    assert changes["data"][0]["data"]["object"]["balances"] == {"USD": "44.40"}
