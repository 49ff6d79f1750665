"""The invoice PDF and the hosted page show what corrected the invoice: the customer's
balance applied, credit notes and refunds."""

import io
import re
from typing import Any

import httpx
from pypdf import PdfReader

from tests.conftest import TenantHandle, make_customer, make_invoice
from tests.credits.test_credit_note_pdf import (
    ONE_CONSULTING_DAY,
    gateway_says,
    issue,
    paid_invoice,
    split_credit_note,
)

CORRECTIONS = ("Applied balance", "Credited", "Refunded", "Credit notes", "Refunds")


async def invoice_pdf_text(
    client: httpx.AsyncClient, tenant: TenantHandle, invoice: dict[str, Any]
) -> str:
    response = await client.get(f"/api/invoices/{invoice['id']}/pdf", headers=tenant.headers)
    assert response.status_code == 200, response.text
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(response.content)).pages)


async def hosted_text(client: httpx.AsyncClient, invoice: dict[str, Any]) -> str:
    """The hosted page as its reader sees it: text without markup, one space between."""
    page = await client.get(invoice["hostedUrl"])
    assert page.status_code == 200, page.text
    return " ".join(re.sub(r"<[^>]+>", " ", page.text).split())


async def both(client: httpx.AsyncClient, tenant: TenantHandle, invoice: dict[str, Any]) -> str:
    """The PDF's text and the hosted page's, for what both must say."""
    return (
        await invoice_pdf_text(client, tenant, invoice) + "\n" + await hosted_text(client, invoice)
    )


async def test_a_paid_invoice_lists_its_credit_notes_and_refunds(
    client: httpx.AsyncClient, tenant_a: TenantHandle
) -> None:
    invoice = await paid_invoice(client, tenant_a)
    note = await split_credit_note(client, tenant_a, invoice)
    [refund_id] = note["refundIds"]
    await gateway_says(
        client,
        "refund.succeeded",
        {"refundId": refund_id, "gatewayReference": "re_1", "amount": "50.00", "currency": "USD"},
    )
    # Recorded only, so it can be voided; a void note is no part of the invoice any more.
    voided = await issue(
        client,
        tenant_a,
        invoice["id"],
        lines=[{"description": "Mistake", "amount": "1", "taxRate": "0"}],
        outOfBandAmount="1",
    )
    response = await client.post(f"/api/credit-notes/{voided['id']}/void", headers=tenant_a.headers)
    assert response.status_code == 200, response.text
    refund = (await client.get(f"/api/refunds/{refund_id}", headers=tenant_a.headers)).json()
    assert refund["status"] == "succeeded"
    day = note["createdAt"][:10]

    pdf = await invoice_pdf_text(client, tenant_a, invoice)
    page = await hosted_text(client, invoice)

    for text in (pdf, page):
        assert f"{note['number']} {day} {ONE_CONSULTING_DAY} USD" in text
        assert f"50.00 USD succeeded {refund['succeededAt'][:10]}" in text
        assert "Refunded 50.00 USD" in text
        assert "Paid 277.50 USD" in text
        assert voided["number"] not in text
        # Nothing was owed when the note came, so nothing was credited to the amount due.
        assert "Credited" not in text
        assert "Applied balance" not in text
    assert "Credit notes" in pdf
    assert "Refunds" in pdf
    assert "Credit notes Number Date Total" in page
    assert "Refunds Amount Status Date" in page


async def test_an_open_invoice_shows_what_the_balance_and_credit_notes_took_off(
    client: httpx.AsyncClient, tenant_a: TenantHandle
) -> None:
    # The earlier invoice's credit note leaves the customer 40.00 of balance.
    earlier = await paid_invoice(client, tenant_a)
    await split_credit_note(client, tenant_a, earlier)
    invoice = await make_invoice(client, tenant_a, earlier["customerId"], finalize=True)
    assert invoice["appliedBalance"] == "40.00"
    note = await issue(
        client,
        tenant_a,
        invoice["id"],
        lines=[{"description": "Late delivery", "amount": "10", "taxRate": "0"}],
    )

    text = await both(client, tenant_a, invoice)

    for expected in (
        "Total 277.50 USD",
        "Applied balance 40.00 USD",
        "Credited 10.00 USD",
        "Paid 0.00 USD",
        "Amount due 227.50 USD",
        f"{note['number']} {note['createdAt'][:10]} 10.00 USD",
    ):
        assert text.count(expected) == 2, expected  # once in the PDF, once on the page
    assert "Refunded" not in text
    assert "Refunds" not in text


async def test_an_invoice_nothing_corrected_reads_as_before(
    client: httpx.AsyncClient, tenant_a: TenantHandle
) -> None:
    customer = await make_customer(client, tenant_a)
    invoice = await make_invoice(client, tenant_a, customer["id"], finalize=True)

    text = await both(client, tenant_a, invoice)

    assert text.count("Amount due 277.50 USD") == 2
    for absent in CORRECTIONS:
        assert absent not in text
