"""What can be raced is raced, on both databases: credit notes on one invoice, refunds of one
payment, and one customer's balance taken by invoices finalized at once. On PostgreSQL the
requests really run in parallel and queue on row locks (the invoice first, as payments take
them); on SQLite write transactions are exclusive, so there the tests prove the rules hold
when each sees what the one before it left.
"""

import asyncio
import uuid
from collections import Counter
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from tenvoice.credits.models import BalanceTransaction, CreditNote, Refund
from tenvoice.platform.db import Database
from tests.conftest import TenantHandle, get_ok, make_customer, make_invoice, make_tenant
from tests.credits.support import issue, item_line, ledger
from tests.gateway.test_webhook_endpoint import deliver, pending_payment
from tests.gateway.test_webhook_endpoint import event as gateway_event
from tests.problems import assert_problem

RUSH = 20


@pytest.fixture
async def tenant(client: httpx.AsyncClient, admin: dict[str, str]) -> TenantHandle:
    return await make_tenant(client, admin, "Rush", defaultTaxRate="0")


async def paid_invoice(client: httpx.AsyncClient, tenant: TenantHandle) -> dict[str, Any]:
    """An invoice the gateway's signed webhook has paid in full, and its payment."""
    pending = await pending_payment(client, tenant)
    acked = await deliver(client, gateway_event(pending))
    assert acked.status_code == 200, acked.text
    invoice = await get_ok(client, tenant, f"/api/invoices/{pending.invoice_id}")
    assert invoice["status"] == "paid"
    return {**invoice, "paymentId": pending.payment_id}


async def count(db: Database, tenant: TenantHandle, model: Any, **where: Any) -> int:
    async with db.read(uuid.UUID(tenant.id)) as session:
        statement = select(func.count()).select_from(model)
        for name, value in where.items():
            statement = statement.where(getattr(model, name) == value)
        found = await session.scalar(statement)
    assert found is not None
    return found


def refused(responses: list[httpx.Response], code: str) -> list[dict[str, Any]]:
    """The created objects; every other response must be the refusal `code`."""
    for response in responses:
        if response.status_code != 201:
            assert_problem(response, 409, code)
    return [r.json() for r in responses if r.status_code == 201]


async def test_concurrent_full_credit_notes_issue_exactly_one(
    client: httpx.AsyncClient, tenant: TenantHandle, db: Database
) -> None:
    customer = await make_customer(client, tenant)
    invoice = await make_invoice(client, tenant, customer["id"], finalize=True)
    everything = [item_line(invoice, 0, quantity="2"), item_line(invoice, 1, quantity="1")]

    responses = await asyncio.gather(
        *(issue(client, tenant, invoice["id"], everything) for _ in range(RUSH))
    )

    [note] = refused(list(responses), "amount_exceeds_creditable")
    assert (note["number"], note["total"]) == (f"{invoice['number']}-CN-01", invoice["total"])
    assert await count(db, tenant, CreditNote, invoice_id=uuid.UUID(invoice["id"])) == 1
    after = await get_ok(client, tenant, f"/api/invoices/{invoice['id']}")
    assert (after["status"], after["creditedAmount"], after["amountDue"]) == (
        "paid",
        invoice["total"],
        "0.00",
    )


async def test_concurrent_partial_credit_notes_number_without_gaps(
    client: httpx.AsyncClient, tenant: TenantHandle
) -> None:
    customer = await make_customer(client, tenant)
    invoice = await make_invoice(client, tenant, customer["id"], finalize=True)
    # 250.00 in all: 11 notes of 25.00 each, 10 fit.
    one = [{"description": "Goodwill", "amount": "25"}]

    responses = await asyncio.gather(
        *(issue(client, tenant, invoice["id"], one) for _ in range(11))
    )

    notes = refused(list(responses), "amount_exceeds_creditable")
    assert sorted(n["number"] for n in notes) == [
        f"{invoice['number']}-CN-{n:02d}" for n in range(1, 11)
    ]


async def test_concurrent_full_refunds_accept_exactly_one(
    client: httpx.AsyncClient, tenant: TenantHandle, db: Database
) -> None:
    invoice = await paid_invoice(client, tenant)
    body = {"paymentId": invoice["paymentId"]}

    responses = await asyncio.gather(
        *(client.post("/api/refunds", json=body, headers=tenant.headers) for _ in range(RUSH))
    )

    [refund] = refused(list(responses), "amount_exceeds_refundable")
    assert refund["amount"] == invoice["total"]
    assert await count(db, tenant, Refund, payment_id=uuid.UUID(invoice["paymentId"])) == 1
    payment = await get_ok(client, tenant, f"/api/payments/{invoice['paymentId']}")
    assert payment["amountRefunded"] == invoice["total"]


async def test_refunds_and_refunding_credit_notes_raced_never_refund_more_than_paid(
    client: httpx.AsyncClient, tenant: TenantHandle, db: Database
) -> None:
    invoice = await paid_invoice(client, tenant)
    half = [item_line(invoice, 0, quantity="1")]  # 100.00 of the 250.00 paid

    def refund() -> Any:
        body = {"paymentId": invoice["paymentId"], "amount": "100"}
        return client.post("/api/refunds", json=body, headers=tenant.headers)

    def note() -> Any:
        return issue(client, tenant, invoice["id"], half, refundAmount="100")

    responses = await asyncio.gather(*(refund() if n % 2 else note() for n in range(RUSH)))

    statuses = Counter(r.status_code for r in responses)
    assert statuses[201] == 2, statuses
    for response in responses:
        if response.status_code != 201:
            assert response.json()["code"] in (
                "amount_exceeds_refundable",
                "amount_exceeds_creditable",
            )
    payment = await get_ok(client, tenant, f"/api/payments/{invoice['paymentId']}")
    assert payment["amountRefunded"] == "200.00"
    assert await count(db, tenant, Refund, payment_id=uuid.UUID(invoice["paymentId"])) == 2


async def test_invoices_finalized_at_once_never_take_more_than_the_balance(
    client: httpx.AsyncClient, tenant: TenantHandle, db: Database
) -> None:
    customer = await make_customer(client, tenant)
    path = f"/api/customers/{customer['id']}/balance-transactions"
    credit = await client.post(
        path, json={"currency": "USD", "amount": "400"}, headers=tenant.headers
    )
    assert credit.status_code == 201, credit.text
    drafts = [await make_invoice(client, tenant, customer["id"]) for _ in range(RUSH)]

    responses = await asyncio.gather(
        *(
            client.post(f"/api/invoices/{draft['id']}/finalize", headers=tenant.headers)
            for draft in drafts
        )
    )

    assert all(r.status_code == 200 for r in responses), [r.text for r in responses]
    applied = sorted((r.json()["appliedBalance"] for r in responses), reverse=True)
    # 250.00 each: one takes 250, one the 150 left, the rest nothing.
    assert applied[:3] == ["250.00", "150.00", "0.00"]
    assert set(applied[2:]) == {"0.00"}
    holder = await get_ok(client, tenant, f"/api/customers/{customer['id']}")
    assert holder["balances"] == {"USD": "0.00"}
    entries = await ledger(client, tenant, customer["id"])
    assert [e["balanceAfter"] for e in reversed(entries)] == ["400.00", "150.00", "0.00"]
    assert await count(db, tenant, BalanceTransaction, customer_id=uuid.UUID(customer["id"])) == 3
