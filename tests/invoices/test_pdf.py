import io
import re

import httpx
from pypdf import PdfReader

from tests.conftest import TenantHandle, make_customer, make_invoice


async def test_pdf_carries_the_invoice(client: httpx.AsyncClient, tenant_a: TenantHandle) -> None:
    customer = await make_customer(client, tenant_a, name="Ada (Countess) Lovelace")
    invoice = await make_invoice(client, tenant_a, customer["id"], finalize=True, memo="Net 30")

    response = await client.get(f"/api/invoices/{invoice['id']}/pdf", headers=tenant_a.headers)

    assert response.status_code == 200
    assert response.headers["content-type"] == "application/pdf"
    assert invoice["number"] in response.headers["content-disposition"]
    text = PdfReader(io.BytesIO(response.content)).pages[0].extract_text()
    for expected in (
        invoice["number"],
        "Acme",
        "Ada (Countess) Lovelace",
        "Consulting",
        "277.50",
        "Net 30",
    ):
        assert expected in text


async def test_long_invoices_continue_on_more_pages(
    client: httpx.AsyncClient, tenant_a: TenantHandle
) -> None:
    customer = await make_customer(client, tenant_a)
    items = [{"description": f"Line {n}", "quantity": 1, "unitPrice": "1"} for n in range(120)]
    invoice = await make_invoice(client, tenant_a, customer["id"], items=items)

    response = await client.get(f"/api/invoices/{invoice['id']}/pdf", headers=tenant_a.headers)

    reader = PdfReader(io.BytesIO(response.content))
    assert len(reader.pages) == 3
    text = "".join(page.extract_text() for page in reader.pages)
    assert sorted(int(n) for n in re.findall(r"Line (\d+)", text)) == list(range(120))
    assert "Draft invoice" in text
    assert "133.20" in text  # 120.00 + 11% tax


async def test_pdf_of_another_tenants_invoice_is_404(
    client: httpx.AsyncClient, tenant_a: TenantHandle, tenant_b: TenantHandle
) -> None:
    customer = await make_customer(client, tenant_b)
    invoice = await make_invoice(client, tenant_b, customer["id"])

    response = await client.get(f"/api/invoices/{invoice['id']}/pdf", headers=tenant_a.headers)

    assert response.status_code == 404
    assert response.json()["code"] == "invoice_not_found"
