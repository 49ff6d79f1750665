"""hostedUrl: the public page of a finalized invoice, for its customer."""

import io
import uuid

import httpx
from fastapi import FastAPI
from pypdf import PdfReader
from sqlalchemy import select

from tenvoice.config import Settings
from tenvoice.invoices.links import HostedInvoiceLink
from tenvoice.main import create_app
from tenvoice.platform.db import Database
from tenvoice.platform.tokens import token_hash
from tests import databases
from tests.conftest import Backend, TenantHandle, make_customer, make_invoice
from tests.invoices.support import act_ok
from tests.problems import assert_problem

LINK_PREFIX = "http://tenvoice.test/hosted/invoices/"


async def test_drafts_have_no_public_link(
    client: httpx.AsyncClient, tenant_a: TenantHandle
) -> None:
    customer = await make_customer(client, tenant_a)
    draft = await make_invoice(client, tenant_a, customer["id"])
    assert draft["hostedUrl"] is None


async def test_a_finalized_invoice_has_a_public_page(
    client: httpx.AsyncClient, tenant_a: TenantHandle
) -> None:
    customer = await make_customer(client, tenant_a, name="<script>alert(1)</script> Ltd")
    invoice = await make_invoice(client, tenant_a, customer["id"], finalize=True, memo="Thanks!")
    url = invoice["hostedUrl"]
    assert url.startswith(LINK_PREFIX)
    assert len(url.removeprefix(LINK_PREFIX)) >= 43  # 256 random bits

    page = await client.get(url)  # no credentials: the link is the credential

    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    for text in (invoice["number"], "Acme", "277.50", "Consulting", "Thanks!", "open"):
        assert text in page.text
    # Tenant-supplied text is escaped, never markup.
    assert "<script>alert(1)</script>" not in page.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text
    # The token must not leak onward, be cached or be indexed.
    assert page.headers["referrer-policy"] == "no-referrer"
    assert "no-store" in page.headers["cache-control"]
    assert "noindex" in page.headers["x-robots-tag"]
    assert page.headers["content-security-policy"].startswith("default-src 'none'")


async def test_the_link_stays_the_same_and_follows_the_status(
    client: httpx.AsyncClient, tenant_a: TenantHandle
) -> None:
    customer = await make_customer(client, tenant_a)
    invoice = await make_invoice(client, tenant_a, customer["id"], finalize=True)
    fetched = (await client.get(f"/api/invoices/{invoice['id']}", headers=tenant_a.headers)).json()
    listed = (await client.get("/api/invoices", headers=tenant_a.headers)).json()["data"]
    assert fetched["hostedUrl"] == invoice["hostedUrl"] == listed[0]["hostedUrl"]

    voided = await act_ok(client, tenant_a, invoice["id"], "void")
    assert voided["hostedUrl"] == invoice["hostedUrl"]
    page = await client.get(invoice["hostedUrl"])
    assert ">void<" in page.text


async def test_the_public_pdf(client: httpx.AsyncClient, tenant_a: TenantHandle) -> None:
    customer = await make_customer(client, tenant_a)
    invoice = await make_invoice(client, tenant_a, customer["id"], finalize=True)

    response = await client.get(invoice["hostedUrl"] + "/pdf")

    assert response.status_code == 200
    assert response.headers["content-type"] == "application/pdf"
    assert response.headers["referrer-policy"] == "no-referrer"
    text = PdfReader(io.BytesIO(response.content)).pages[0].extract_text()
    assert invoice["number"] in text


async def test_unknown_links_are_404(client: httpx.AsyncClient) -> None:
    for token in ("nope", "x" * 43, "y" * 101):
        for suffix in ("", "/pdf"):
            response = await client.get(f"/hosted/invoices/{token}{suffix}")
            assert_problem(response, 404, "invoice_not_found" if len(token) <= 100 else "not_found")


async def test_tampered_links_are_404(client: httpx.AsyncClient, tenant_a: TenantHandle) -> None:
    customer = await make_customer(client, tenant_a)
    invoice = await make_invoice(client, tenant_a, customer["id"], finalize=True)
    token = invoice["hostedUrl"].removeprefix(LINK_PREFIX)
    flipped = token[:-1] + ("A" if token[-1] != "A" else "B")
    for tampered in (flipped, token[:-1], token + "A", token.upper(), token[::-1]):
        response = await client.get(f"/hosted/invoices/{tampered}")
        assert_problem(response, 404, "invoice_not_found")
    assert (await client.get(invoice["hostedUrl"])).status_code == 200


async def test_each_invoice_and_each_key_has_its_own_link(
    client: httpx.AsyncClient, settings: Settings, db: Database, tenant_a: TenantHandle
) -> None:
    customer = await make_customer(client, tenant_a)
    first = await make_invoice(client, tenant_a, customer["id"], finalize=True)
    second = await make_invoice(client, tenant_a, customer["id"])
    second = await act_ok(client, tenant_a, second["id"], "finalize")
    assert first["hostedUrl"] != second["hostedUrl"]
    for invoice in (first, second):
        assert (await client.get(invoice["hostedUrl"])).status_code == 200

    other_key = settings.model_copy(update={"secrets_key": "another-secrets-key-" + "z" * 32})
    other = create_app(other_key, db=db)
    transport = httpx.ASGITransport(app=other)
    async with httpx.AsyncClient(transport=transport, base_url="http://tenvoice.test") as c:
        path = f"/api/invoices/{first['id']}"
        elsewhere = (await c.get(path, headers=tenant_a.headers)).json()["hostedUrl"]
        assert elsewhere.startswith(LINK_PREFIX)
        assert elsewhere != first["hostedUrl"]
        # The invoice's link row holds this key's hash, not that one's.
        assert (await c.get(elsewhere)).status_code == 404


async def test_no_column_anywhere_holds_the_token(
    client: httpx.AsyncClient, backend: Backend, tenant_a: TenantHandle
) -> None:
    customer = await make_customer(client, tenant_a)
    invoice = await make_invoice(client, tenant_a, customer["id"], finalize=True)
    token = invoice["hostedUrl"].removeprefix(LINK_PREFIX)

    stored = await databases.every_value(
        backend.url if backend.name == "sqlite" else databases.superuser_url()
    )

    assert invoice["number"] in stored  # the scan sees the invoice row
    assert token_hash(token) in stored  # and the link's hash
    assert token not in stored


async def test_only_the_tokens_hash_is_kept_where_links_are_looked_up(
    client: httpx.AsyncClient, db: Database, tenant_a: TenantHandle
) -> None:
    customer = await make_customer(client, tenant_a)
    invoice = await make_invoice(client, tenant_a, customer["id"], finalize=True)
    token = invoice["hostedUrl"].removeprefix(LINK_PREFIX)
    async with db.lookup() as connection:
        rows = (await connection.execute(select(HostedInvoiceLink))).all()
    assert [(row.tenant_id, row.invoice_id) for row in rows] == [
        (uuid.UUID(tenant_a.id), uuid.UUID(invoice["id"]))
    ]
    assert token not in repr(rows)


async def test_links_use_the_configured_public_address(
    settings: Settings, db: Database, tenant_a: TenantHandle, client: httpx.AsyncClient
) -> None:
    customer = await make_customer(client, tenant_a)
    public: FastAPI = create_app(
        settings.model_copy(update={"public_base_url": "https://billing.example.com/"}), db=db
    )
    transport = httpx.ASGITransport(app=public)
    async with httpx.AsyncClient(transport=transport, base_url="http://internal:8000") as c:
        response = await c.post(
            "/api/invoices",
            json={
                "customerId": customer["id"],
                "items": [{"description": "x", "quantity": 1, "unitPrice": 5}],
                "finalize": True,
            },
            headers=tenant_a.headers,
        )
    assert response.json()["hostedUrl"].startswith("https://billing.example.com/hosted/invoices/")
