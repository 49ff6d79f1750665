"""Concurrent payment attempts can never overpay an invoice (API.md, Payments).

Attempts on one invoice queue on its row lock and each sees what the one before reserved.
On SQLite write transactions are exclusive anyway, so there these tests prove the lock is
taken up front (BEGIN IMMEDIATE), not that attempts run in parallel.
"""

import asyncio
import json
import uuid
from collections import Counter
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from standardwebhooks import Webhook

from tenvoice.config import Settings
from tenvoice.gateway.simulator import CHARGE
from tenvoice.payments.models import Payment
from tenvoice.platform.db import Database
from tenvoice.platform.messages import EventHandlers
from tenvoice.platform.outbox import OutboxJob
from tests.conftest import (
    ADMIN_KEY,
    WEBHOOK_SECRET,
    TenantHandle,
    make_tenant,
)
from tests.live import eventually, live_server
from tests.payments.support import fetch, open_invoice, pay
from tests.problems import assert_problem

ATTEMPTS = 32
# STANDARD_ITEMS untaxed: a total that splits into exact quarters.
TOTAL = "250.00"
QUARTER = "62.50"


@pytest.fixture
async def tenant(client: httpx.AsyncClient, admin: dict[str, str]) -> TenantHandle:
    return await make_tenant(client, admin, "Rush", defaultTaxRate="0")


async def rush(
    client: httpx.AsyncClient, tenant: TenantHandle, invoice_id: str, amount: str, count: int
) -> list[httpx.Response]:
    return list(
        await asyncio.gather(
            *(pay(client, tenant, invoice_id, amount, token="tok_pending") for _ in range(count))
        )
    )


def accepted(responses: list[httpx.Response]) -> list[dict[str, Any]]:
    """The created payments; every other response must be the balance refusal."""
    created = [r.json() for r in responses if r.status_code == 201]
    for response in responses:
        if response.status_code != 201:
            assert_problem(response, 409, "amount_exceeds_balance")
    return created


async def payment_rows(db: Database, tenant: TenantHandle, invoice_id: str) -> int:
    async with db.read(uuid.UUID(tenant.id)) as session:
        count = await session.scalar(
            select(func.count())
            .select_from(Payment)
            .where(Payment.invoice_id == uuid.UUID(invoice_id))
        )
    assert count is not None
    return count


async def charge_jobs(db: Database) -> int:
    async with db.lookup() as connection:
        count = await connection.scalar(
            select(func.count()).select_from(OutboxJob).where(OutboxJob.kind == CHARGE)
        )
    assert count is not None
    return count


def succeeded_webhook(payment: dict[str, Any], message_id: str) -> tuple[bytes, dict[str, str]]:
    """What a gateway sends for a successful charge, signed by the reference implementation
    of Standard Webhooks rather than by the service's own signer."""
    body = json.dumps(
        {
            "type": "payment.succeeded",
            "data": {
                "paymentId": payment["id"],
                "gatewayReference": f"ch_test_{payment['id']}",
                "amount": payment["amount"],
                "currency": payment["currency"],
            },
        }
    )
    now = datetime.now(UTC)
    headers = {
        "webhook-id": message_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": Webhook(WEBHOOK_SECRET).sign(message_id, now, body),
        "content-type": "application/json",
    }
    return body.encode(), headers


async def deliver(client: httpx.AsyncClient, webhook: tuple[bytes, dict[str, str]]) -> str:
    body, headers = webhook
    response = await client.post("/api/webhooks/payments", content=body, headers=headers)
    assert response.status_code == 200, response.text
    status: str = response.json()["status"]
    return status


async def event_counts(
    client: httpx.AsyncClient, tenant: TenantHandle, invoice_id: str
) -> Counter[str]:
    timeline = await fetch(client, tenant, f"/api/invoices/{invoice_id}/timeline")
    return Counter(e["eventType"] for e in timeline["data"])


async def test_concurrent_full_attempts_accept_exactly_one(
    client: httpx.AsyncClient, tenant: TenantHandle, db: Database
) -> None:
    invoice = await open_invoice(client, tenant, TOTAL)

    responses = await rush(client, tenant, invoice["id"], TOTAL, ATTEMPTS)

    assert Counter(r.status_code for r in responses) == {201: 1, 409: ATTEMPTS - 1}
    [payment] = accepted(responses)
    assert await payment_rows(db, tenant, invoice["id"]) == 1
    # A refused attempt rolled back whole: it left no charge for the gateway either.
    assert await charge_jobs(db) == 1
    pending = await fetch(client, tenant, f"/api/invoices/{invoice['id']}")
    assert (pending["status"], pending["amountPaid"], pending["amountDue"]) == (
        "open",
        "0.00",
        TOTAL,
    )

    # The gateway delivers the same message several times at once: it is applied once.
    webhook = succeeded_webhook(payment, f"msg_{uuid.uuid4().hex}")
    outcomes = await asyncio.gather(*(deliver(client, webhook) for _ in range(8)))
    assert Counter(outcomes) == {"processed": 1, "duplicate": 7}
    # A second, distinct success for the settled payment changes nothing.
    assert await deliver(client, succeeded_webhook(payment, f"msg_{uuid.uuid4().hex}")) == "ignored"

    paid = await fetch(client, tenant, f"/api/invoices/{invoice['id']}")
    assert (paid["status"], paid["amountPaid"], paid["amountDue"]) == ("paid", TOTAL, "0.00")
    counts = await event_counts(client, tenant, invoice["id"])
    assert (counts["payment.attempted"], counts["payment.succeeded"], counts["invoice.paid"]) == (
        1,
        1,
        1,
    )


async def test_concurrent_quarter_attempts_accept_exactly_four(
    client: httpx.AsyncClient, tenant: TenantHandle, db: Database
) -> None:
    invoice = await open_invoice(client, tenant, TOTAL)

    responses = await rush(client, tenant, invoice["id"], QUARTER, ATTEMPTS)

    payments = accepted(responses)
    assert len(payments) == 4
    assert Counter(r.status_code for r in responses) == {201: 4, 409: ATTEMPTS - 4}
    assert await payment_rows(db, tenant, invoice["id"]) == 4
    assert await charge_jobs(db) == 4
    assert sum(Decimal(p["amount"]) for p in payments) == Decimal(TOTAL)

    # The four settle at once: each must add to what the others already paid.
    outcomes = await asyncio.gather(
        *(deliver(client, succeeded_webhook(p, f"msg_{uuid.uuid4().hex}")) for p in payments)
    )
    assert outcomes == ["processed"] * 4

    paid = await fetch(client, tenant, f"/api/invoices/{invoice['id']}")
    assert (paid["status"], paid["amountPaid"], paid["amountDue"]) == ("paid", TOTAL, "0.00")
    counts = await event_counts(client, tenant, invoice["id"])
    assert (counts["payment.succeeded"], counts["invoice.paid"]) == (4, 1)


async def test_concurrent_attempts_on_many_invoices_settle_without_overpaying(
    settings: Settings, db: Database, event_handlers: EventHandlers
) -> None:
    invoices_count, attempts_each = 10, 6
    async with live_server(settings, db, event_handlers) as live:
        client = live.client
        admin = {"Authorization": f"Bearer {ADMIN_KEY}"}
        tenant = await make_tenant(client, admin, "Rush", defaultTaxRate="0")
        invoices = list(
            await asyncio.gather(
                *(open_invoice(client, tenant, TOTAL) for _ in range(invoices_count))
            )
        )

        # Every attempt at once, across all invoices, while the gateway answers as fast as
        # it can: payments settle while later attempts on the same invoice still queue.
        rushed = await asyncio.gather(
            *(
                pay(client, tenant, invoice["id"], QUARTER)
                for invoice in invoices
                for _ in range(attempts_each)
            )
        )

        by_invoice: dict[str, list[httpx.Response]] = {}
        for response, invoice in zip(
            rushed, [i for i in invoices for _ in range(attempts_each)], strict=True
        ):
            by_invoice.setdefault(invoice["id"], []).append(response)
        for responses in by_invoice.values():
            created = [r for r in responses if r.status_code == 201]
            assert len(created) == 4, [r.text for r in responses]
            for response in responses:
                if response.status_code != 201:
                    # Refused for the balance, or, once settled, for the paid invoice.
                    code = response.json().get("code")
                    assert code in ("amount_exceeds_balance", "invoice_not_payable"), response.text
                    assert_problem(response, 409, code)

        async def all_paid() -> bool:
            # One list request per poll: the polling must not starve the worker it waits on.
            listed = await fetch(client, tenant, "/api/invoices?pageSize=100")
            states = [i for i in listed["data"] if i["id"] in by_invoice]
            assert len(states) == invoices_count
            for state in states:
                # Checked on every poll, so a moment of overpayment would be caught too.
                assert Decimal(state["amountPaid"]) <= Decimal(state["total"]), state
            return all(state["status"] == "paid" for state in states)

        await eventually(all_paid, timeout=60)

        for invoice in invoices:
            payments = await fetch(
                client, tenant, f"/api/payments?invoiceId={invoice['id']}&pageSize=100"
            )
            assert [p["status"] for p in payments["data"]] == ["succeeded"] * 4
            assert sum(Decimal(p["amount"]) for p in payments["data"]) == Decimal(TOTAL)
            state = await fetch(client, tenant, f"/api/invoices/{invoice['id']}")
            assert (state["amountPaid"], state["amountDue"]) == (TOTAL, "0.00")
            counts = await event_counts(client, tenant, invoice["id"])
            assert (counts["payment.succeeded"], counts["invoice.paid"]) == (4, 1)

        # Every webhook was taken at its first delivery: under this contention none hit a
        # deadlock or an error and was retried into success, which the settled state
        # above would not show.
        async def jobs_finished() -> list[Any]:
            async with db.lookup() as connection:
                rows = (
                    await connection.execute(
                        select(OutboxJob.status, OutboxJob.attempts, OutboxJob.last_error).where(
                            OutboxJob.kind == CHARGE
                        )
                    )
                ).all()
            return list(rows) if all(row.status != "pending" for row in rows) else []

        jobs = await eventually(jobs_finished)
        assert len(jobs) == 4 * invoices_count
        assert {(job.status, job.attempts, job.last_error) for job in jobs} == {("done", 1, None)}
