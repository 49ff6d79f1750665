import uuid
from datetime import UTC, datetime

import httpx
from sqlalchemy import select

from tenvoice.customers.models import Customer
from tenvoice.platform.db import Database
from tests.conftest import TenantHandle, make_customer, make_invoice
from tests.problems import assert_problem


async def stored(db: Database, tenant: TenantHandle, customer_id: str) -> Customer | None:
    async with db.read(uuid.UUID(tenant.id)) as session:
        found: Customer | None = await session.scalar(
            select(Customer).where(Customer.id == uuid.UUID(customer_id))
        )
        return found


async def test_delete_is_soft(
    client: httpx.AsyncClient, tenant_a: TenantHandle, db: Database
) -> None:
    doomed = await make_customer(client, tenant_a, "Doomed")
    kept = await make_customer(client, tenant_a, "Kept")
    before = datetime.now(UTC)

    response = await client.delete(f"/api/customers/{doomed['id']}", headers=tenant_a.headers)
    assert response.status_code == 204, response.text
    assert response.content == b""

    gone = await client.get(f"/api/customers/{doomed['id']}", headers=tenant_a.headers)
    assert_problem(gone, 404, "customer_not_found")
    listed = await client.get(
        "/api/customers", params={"includeTotal": "true"}, headers=tenant_a.headers
    )
    assert [c["id"] for c in listed.json()["data"]] == [kept["id"]]
    assert listed.json()["pagination"]["totalCount"] == 1
    searched = await client.get(
        "/api/customers", params={"search": "Doomed"}, headers=tenant_a.headers
    )
    assert searched.json()["data"] == []

    row = await stored(db, tenant_a, doomed["id"])
    assert row is not None, "a soft delete keeps the row"
    assert row.deleted_at is not None
    assert row.deleted_at >= before
    assert row.name == "Doomed"
    alive = await stored(db, tenant_a, kept["id"])
    assert alive is not None
    assert alive.deleted_at is None


async def test_deleted_customer_cannot_be_changed_or_deleted_again(
    client: httpx.AsyncClient, tenant_a: TenantHandle, db: Database
) -> None:
    customer = await make_customer(client, tenant_a)
    path = f"/api/customers/{customer['id']}"
    assert (await client.delete(path, headers=tenant_a.headers)).status_code == 204
    first = await stored(db, tenant_a, customer["id"])
    assert first is not None
    assert first.deleted_at is not None

    patched = await client.patch(path, json={"name": "Back"}, headers=tenant_a.headers)
    assert_problem(patched, 404, "customer_not_found")
    again = await client.delete(path, headers=tenant_a.headers)
    assert_problem(again, 404, "customer_not_found")

    row = await stored(db, tenant_a, customer["id"])
    assert row is not None
    assert (row.name, row.deleted_at) == (customer["name"], first.deleted_at)


async def test_deleted_customer_takes_no_new_invoices(
    client: httpx.AsyncClient, tenant_a: TenantHandle
) -> None:
    customer = await make_customer(client, tenant_a)
    await client.delete(f"/api/customers/{customer['id']}", headers=tenant_a.headers)
    response = await client.post(
        "/api/invoices",
        json={
            "customerId": customer["id"],
            "items": [{"description": "x", "quantity": 1, "unitPrice": 1}],
        },
        headers=tenant_a.headers,
    )
    assert_problem(response, 404, "customer_not_found")


async def test_delete_refused_while_an_invoice_is_open(
    client: httpx.AsyncClient, tenant_a: TenantHandle, db: Database
) -> None:
    customer = await make_customer(client, tenant_a)
    invoice = await make_invoice(client, tenant_a, customer["id"], finalize=True)
    assert invoice["status"] == "open"
    path = f"/api/customers/{customer['id']}"

    refused = await client.delete(path, headers=tenant_a.headers)
    assert_problem(refused, 409, "customer_has_open_invoices")
    fetched = await client.get(path, headers=tenant_a.headers)
    assert fetched.status_code == 200, fetched.text
    row = await stored(db, tenant_a, customer["id"])
    assert row is not None
    assert row.deleted_at is None

    voided = await client.post(f"/api/invoices/{invoice['id']}/void", headers=tenant_a.headers)
    assert voided.status_code == 200, voided.text
    assert voided.json()["status"] == "void"

    allowed = await client.delete(path, headers=tenant_a.headers)
    assert allowed.status_code == 204, allowed.text
    assert_problem(await client.get(path, headers=tenant_a.headers), 404, "customer_not_found")
    # The invoice history stays readable after its customer is gone.
    kept = await client.get(f"/api/invoices/{invoice['id']}", headers=tenant_a.headers)
    assert kept.status_code == 200, kept.text
    assert kept.json()["customerId"] == customer["id"]


async def test_an_uncollectible_invoice_still_blocks_delete(
    client: httpx.AsyncClient, tenant_a: TenantHandle
) -> None:
    customer = await make_customer(client, tenant_a)
    invoice = await make_invoice(client, tenant_a, customer["id"], finalize=True)
    marked = await client.post(
        f"/api/invoices/{invoice['id']}/mark-uncollectible", headers=tenant_a.headers
    )
    assert marked.json()["status"] == "uncollectible"
    response = await client.delete(f"/api/customers/{customer['id']}", headers=tenant_a.headers)
    assert_problem(response, 409, "customer_has_open_invoices")


async def test_drafts_do_not_block_delete(
    client: httpx.AsyncClient, tenant_a: TenantHandle
) -> None:
    customer = await make_customer(client, tenant_a)
    draft = await make_invoice(client, tenant_a, customer["id"])
    assert draft["status"] == "draft"
    response = await client.delete(f"/api/customers/{customer['id']}", headers=tenant_a.headers)
    assert response.status_code == 204, response.text
    # The draft may no longer become a bill to a customer that is gone.
    finalized = await client.post(f"/api/invoices/{draft['id']}/finalize", headers=tenant_a.headers)
    assert_problem(finalized, 409, "customer_deleted")


async def test_another_customers_open_invoice_does_not_block(
    client: httpx.AsyncClient, tenant_a: TenantHandle
) -> None:
    busy = await make_customer(client, tenant_a, "Busy")
    idle = await make_customer(client, tenant_a, "Idle")
    await make_invoice(client, tenant_a, busy["id"], finalize=True)
    response = await client.delete(f"/api/customers/{idle['id']}", headers=tenant_a.headers)
    assert response.status_code == 204, response.text
