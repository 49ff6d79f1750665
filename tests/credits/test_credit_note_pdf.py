"""A credit note's own PDF, over HTTP, on both databases.

No worker runs behind the ASGI client: payments and refunds settle when a test posts the
gateway's signed webhook itself, as the payment tests do.
"""

import io
import json
import time
import uuid
from typing import Any

import httpx
from pypdf import PdfReader

from tenvoice.gateway.signing import sign
from tests.conftest import WEBHOOK_SECRET, TenantHandle, make_customer, make_invoice
from tests.problems import assert_problem

ONE_CONSULTING_DAY = "111.00"  # 1 x 100 at the 11% of tenant_a


async def gateway_says(client: httpx.AsyncClient, kind: str, data: dict[str, Any]) -> None:
    """Posts the gateway's signed webhook, as the simulated gateway would."""
    body = json.dumps({"type": kind, "data": data}).encode()
    headers = sign(WEBHOOK_SECRET, f"msg_{uuid.uuid4().hex}", int(time.time()), body)
    response = await client.post(
        "/api/webhooks/payments",
        content=body,
        headers={**headers, "content-type": "application/json"},
    )
    assert response.json() == {"status": "processed"}, response.text


async def paid_invoice(client: httpx.AsyncClient, tenant: TenantHandle) -> dict[str, Any]:
    """The standard invoice (277.50), paid in full through the gateway's webhook."""
    customer = await make_customer(client, tenant, name="Zoë Ørsted")
    invoice = await make_invoice(client, tenant, customer["id"], finalize=True)
    body = {
        "invoiceId": invoice["id"],
        "amount": invoice["total"],
        "method": "card",
        "paymentToken": "tok_pending",
    }
    response = await client.post("/api/payments", json=body, headers=tenant.headers)
    assert response.status_code == 201, response.text
    payment = response.json()
    data = {k: payment[k] for k in ("amount", "currency")}
    await gateway_says(
        client,
        "payment.succeeded",
        {"paymentId": payment["id"], "gatewayReference": "ch_1", **data},
    )
    paid = await client.get(f"/api/invoices/{invoice['id']}", headers=tenant.headers)
    assert paid.json()["status"] == "paid"
    return paid.json()  # type: ignore[no-any-return]


async def issue(
    client: httpx.AsyncClient, tenant: TenantHandle, invoice_id: str, **fields: Any
) -> dict[str, Any]:
    body = {"invoiceId": invoice_id, **fields}
    response = await client.post("/api/credit-notes", json=body, headers=tenant.headers)
    assert response.status_code == 201, response.text
    note: dict[str, Any] = response.json()
    return note


async def split_credit_note(
    client: httpx.AsyncClient, tenant: TenantHandle, invoice: dict[str, Any]
) -> dict[str, Any]:
    """One consulting day back on a paid invoice: refunded, to the balance and out of band."""
    consulting = invoice["items"][0]
    return await issue(
        client,
        tenant,
        invoice["id"],
        lines=[{"invoiceItemId": consulting["id"], "quantity": 1}],
        reason="order_change",
        memo="One day fewer than planned",
        refundAmount="50",
        creditAmount="40",
        outOfBandAmount="21",
    )


def pdf_text(response: httpx.Response) -> str:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/pdf"
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(response.content)).pages)


async def test_the_pdf_shows_the_note_its_lines_totals_and_split(
    client: httpx.AsyncClient, tenant_a: TenantHandle
) -> None:
    invoice = await paid_invoice(client, tenant_a)
    note = await split_credit_note(client, tenant_a, invoice)

    response = await client.get(f"/api/credit-notes/{note['id']}/pdf", headers=tenant_a.headers)

    assert response.headers["content-disposition"] == f'inline; filename="{note["number"]}.pdf"'
    text = pdf_text(response)
    for expected in (
        f"Credit note {note['number']}",
        f"Invoice: {invoice['number']}",
        "From: Acme",
        "Credit to: Zoë Ørsted",
        f"Issued: {note['createdAt'][:10]}",
        "ISSUED",
        "Reason: Order change",
        "Consulting",
        "100.00",  # subtotal, and the unit amount
        "11.00 USD",  # tax
        f"{ONE_CONSULTING_DAY} USD",
        "Refunded",
        "50.00 USD",
        "Credited to balance",
        "40.00 USD",
        "Returned out of band",
        "21.00 USD",
        "One day fewer than planned",
        "Refunds",  # the refund the note made, still pending at the gateway
        "pending",
        "Page 1 of 1",
    ):
        assert expected in text, expected
    # Nothing was still owed, so no part of it went to the amount due.
    assert "Credited to amount due" not in text


async def test_a_voided_note_says_void(client: httpx.AsyncClient, tenant_a: TenantHandle) -> None:
    customer = await make_customer(client, tenant_a)
    invoice = await make_invoice(client, tenant_a, customer["id"], finalize=True)
    note = await issue(
        client,
        tenant_a,
        invoice["id"],
        lines=[{"description": "Goodwill", "amount": "10", "taxRate": "0"}],
    )
    voided = await client.post(f"/api/credit-notes/{note['id']}/void", headers=tenant_a.headers)
    assert voided.json()["status"] == "void", voided.text

    text = pdf_text(
        await client.get(f"/api/credit-notes/{note['id']}/pdf", headers=tenant_a.headers)
    )

    assert "VOID" in text
    assert "ISSUED" not in text
    assert f"Voided: {voided.json()['voidedAt'][:10]}" in text
    # A free line: no quantity, its amount as is; all of it went off what was owed.
    assert "Goodwill" in text
    assert "Credited to amount due 10.00 USD" in text


async def test_another_tenants_credit_note_is_404(
    client: httpx.AsyncClient, tenant_a: TenantHandle, tenant_b: TenantHandle
) -> None:
    customer = await make_customer(client, tenant_b)
    invoice = await make_invoice(client, tenant_b, customer["id"], finalize=True)
    note = await issue(
        client, tenant_b, invoice["id"], lines=[{"description": "Discount", "amount": "5"}]
    )

    response = await client.get(f"/api/credit-notes/{note['id']}/pdf", headers=tenant_a.headers)

    assert_problem(response, 404, "credit_note_not_found")
    unknown = await client.get(f"/api/credit-notes/{uuid.uuid4()}/pdf", headers=tenant_b.headers)
    assert_problem(unknown, 404, "credit_note_not_found")
    own = await client.get(f"/api/credit-notes/{note['id']}/pdf", headers=tenant_b.headers)
    assert note["number"] in pdf_text(own)


async def test_many_lines_run_onto_more_pages(
    client: httpx.AsyncClient, tenant_a: TenantHandle
) -> None:
    customer = await make_customer(client, tenant_a)
    items = [{"description": f"Item {n}", "quantity": 1, "unitPrice": "2"} for n in range(90)]
    invoice = await make_invoice(client, tenant_a, customer["id"], items=items, finalize=True)
    lines = [{"invoiceItemId": item["id"], "quantity": 1} for item in invoice["items"]]
    note = await issue(client, tenant_a, invoice["id"], lines=lines)

    response = await client.get(f"/api/credit-notes/{note['id']}/pdf", headers=tenant_a.headers)

    reader = PdfReader(io.BytesIO(response.content))
    assert len(reader.pages) == 2
    text = pdf_text(response)
    assert text.count("Item ") == 90
    assert "Page 2 of 2" in text
    assert text.count(f"Credit note {note['number']}") == 2  # the title heads every page
    assert "199.80 USD" in text  # 180.00 + 11%
