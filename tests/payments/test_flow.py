"""A payment the whole way, as in production: POST over a real socket, the outbox worker
running the simulated gateway, its signed webhook posted back over HTTP to this same
server, and the invoice settled from it. Nothing is stubbed; every wait polls."""

import uuid
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from tenvoice.config import Settings
from tenvoice.gateway.simulator import CHARGE
from tenvoice.platform.db import Database
from tenvoice.platform.inbox import InboxMessage
from tenvoice.platform.messages import EventHandlers
from tenvoice.platform.outbox import OutboxJob
from tests.conftest import ADMIN_KEY, TenantHandle, make_tenant
from tests.live import LiveServer, eventually, live_server
from tests.payments.support import fetch, open_invoice, pay
from tests.problems import assert_problem

ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}"}
# STANDARD_ITEMS at the tenant's 11 %: 250.00 + 27.50 tax.
TOTAL = "277.50"


@pytest.fixture
async def live(
    settings: Settings, db: Database, event_handlers: EventHandlers
) -> AsyncIterator[LiveServer]:
    async with live_server(settings, db, event_handlers) as server:
        yield server


@pytest.fixture
async def tenant(live: LiveServer) -> TenantHandle:
    return await make_tenant(live.client, ADMIN, "Acme", defaultTaxRate="11")


async def attempt(
    client: httpx.AsyncClient,
    tenant: TenantHandle,
    invoice_id: str,
    amount: str,
    token: str | None = None,
    **headers: str,
) -> dict[str, Any]:
    body: dict[str, Any] = {"invoiceId": invoice_id, "amount": amount, "method": "card"}
    if token is not None:
        body["paymentToken"] = token
    response = await client.post("/api/payments", json=body, headers={**tenant.headers, **headers})
    assert response.status_code == 201, response.text
    payment: dict[str, Any] = response.json()
    assert (payment["status"], payment["amount"]) == ("pending", amount)
    return payment


async def settled(
    client: httpx.AsyncClient, tenant: TenantHandle, payment_id: str
) -> dict[str, Any]:
    """The payment once the gateway's webhook has moved it out of pending."""

    async def check() -> dict[str, Any]:
        payment = await fetch(client, tenant, f"/api/payments/{payment_id}")
        return payment if payment["status"] != "pending" else {}

    return await eventually(check)


async def pay_through(
    client: httpx.AsyncClient,
    tenant: TenantHandle,
    invoice_id: str,
    amount: str,
    token: str | None = None,
) -> dict[str, Any]:
    payment = await attempt(client, tenant, invoice_id, amount, token)
    return await settled(client, tenant, payment["id"])


async def has_status(
    client: httpx.AsyncClient, tenant: TenantHandle, path: str, status: str
) -> bool:
    return bool((await fetch(client, tenant, path))["status"] == status)


async def charge_jobs(db: Database) -> dict[str, Any]:
    """The gateway's outbox jobs, by the payment each charges."""
    async with db.lookup() as connection:
        rows = (
            await connection.execute(
                select(
                    OutboxJob.id,
                    OutboxJob.payload,
                    OutboxJob.status,
                    OutboxJob.attempts,
                    OutboxJob.last_error,
                ).where(OutboxJob.kind == CHARGE)
            )
        ).all()
    return {row.payload["paymentId"]: row for row in rows}


async def finished_job(db: Database, payment_id: str) -> Any:
    # The worker records the job done only after the webhook was answered, so it may lag
    # the payment it settled.
    async def check() -> Any:
        job = (await charge_jobs(db)).get(payment_id)
        return job if job is not None and job.status != "pending" else None

    return await eventually(check)


async def inbox(db: Database) -> list[Any]:
    async with db.lookup() as connection:
        return list(
            (
                await connection.execute(
                    select(
                        InboxMessage.source,
                        InboxMessage.message_id,
                        InboxMessage.message_type,
                        InboxMessage.outcome,
                        InboxMessage.tenant_id,
                    )
                )
            ).all()
        )


def assert_succeeded(payment: dict[str, Any]) -> None:
    assert payment["status"] == "succeeded", payment
    assert isinstance(payment["gatewayReference"], str)
    assert payment["gatewayReference"]
    assert payment["succeededAt"] is not None
    assert payment["failedAt"] is None
    assert payment["failureCode"] is None
    assert payment["failureMessage"] is None


def assert_paid(invoice: dict[str, Any]) -> None:
    assert invoice["status"] == "paid", invoice
    assert invoice["paidAt"] is not None
    assert invoice["amountPaid"] == invoice["total"]
    assert invoice["amountDue"] == "0.00"


@pytest.mark.parametrize("token", [None, "tok_success"])
async def test_success_pays_the_invoice(
    live: LiveServer, tenant: TenantHandle, db: Database, token: str | None
) -> None:
    invoice = await open_invoice(live.client, tenant, TOTAL)

    payment = await pay_through(live.client, tenant, invoice["id"], TOTAL, token)

    assert_succeeded(payment)
    assert (payment["invoiceId"], payment["amount"], payment["currency"], payment["method"]) == (
        invoice["id"],
        TOTAL,
        "USD",
        "card",
    )
    paid = await fetch(live.client, tenant, f"/api/invoices/{invoice['id']}")
    assert_paid(paid)
    assert paid["amountPaid"] == TOTAL
    # Delivered at the first try: the webhook was accepted, not retried into success.
    job = await finished_job(db, payment["id"])
    assert (job.status, job.attempts, job.last_error) == ("done", 1, None)


@pytest.mark.parametrize(
    ("token", "code"),
    [
        ("tok_declined", "card_declined"),
        ("tok_insufficient_funds", "insufficient_funds"),
        ("tok_no_such_token", "invalid_token"),
    ],
)
async def test_failure_leaves_the_whole_balance_payable(
    live: LiveServer, tenant: TenantHandle, token: str, code: str
) -> None:
    invoice = await open_invoice(live.client, tenant, TOTAL)

    failed = await pay_through(live.client, tenant, invoice["id"], TOTAL, token)

    assert failed["status"] == "failed", failed
    assert failed["failureCode"] == code
    assert isinstance(failed["failureMessage"], str)
    assert failed["failureMessage"]
    assert failed["failedAt"] is not None
    assert failed["succeededAt"] is None
    after = await fetch(live.client, tenant, f"/api/invoices/{invoice['id']}")
    assert (after["status"], after["amountPaid"], after["amountDue"], after["paidAt"]) == (
        "open",
        "0.00",
        TOTAL,
        None,
    )

    # The failed attempt's reservation is released: the full amount is accepted again.
    retry = await pay_through(live.client, tenant, invoice["id"], TOTAL)

    assert_succeeded(retry)
    assert_paid(await fetch(live.client, tenant, f"/api/invoices/{invoice['id']}"))
    timeline = await fetch(live.client, tenant, f"/api/invoices/{invoice['id']}/timeline")
    events = timeline["data"]
    assert [e["eventType"] for e in events] == [
        "invoice.created",
        "invoice.finalized",
        "payment.attempted",
        "payment.failed",
        "payment.attempted",
        "payment.succeeded",
        "invoice.paid",
    ]
    assert events[3]["entityId"] == failed["id"]
    assert (events[3]["data"]["failureCode"], events[3]["data"]["amount"]) == (code, TOTAL)


async def test_partial_then_full_payment(live: LiveServer, tenant: TenantHandle) -> None:
    invoice = await open_invoice(live.client, tenant, TOTAL)
    path = f"/api/invoices/{invoice['id']}"

    assert_succeeded(await pay_through(live.client, tenant, invoice["id"], "100.00"))

    partly = await fetch(live.client, tenant, path)
    assert (partly["status"], partly["amountPaid"], partly["amountDue"], partly["paidAt"]) == (
        "open",
        "100.00",
        "177.50",
        None,
    )
    over = await pay(live.client, tenant, invoice["id"], "177.51")
    assert_problem(over, 409, "amount_exceeds_balance")

    assert_succeeded(await pay_through(live.client, tenant, invoice["id"], "177.50"))

    paid = await fetch(live.client, tenant, path)
    assert_paid(paid)
    assert paid["amountPaid"] == TOTAL
    assert_problem(
        await pay(live.client, tenant, invoice["id"], "0.01"), 409, "invoice_not_payable"
    )
    payments = await fetch(live.client, tenant, f"/api/payments?invoiceId={invoice['id']}")
    assert sorted(p["amount"] for p in payments["data"]) == ["100.00", "177.50"]
    assert {p["status"] for p in payments["data"]} == {"succeeded"}


async def test_uncollectible_invoice_paid_in_full_becomes_paid(
    live: LiveServer, tenant: TenantHandle
) -> None:
    invoice = await open_invoice(live.client, tenant, TOTAL)
    path = f"/api/invoices/{invoice['id']}"
    response = await live.client.post(f"{path}/mark-uncollectible", headers=tenant.headers)
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "uncollectible"

    # A partial payment can only leave it uncollectible: there is no way back to open.
    assert_succeeded(await pay_through(live.client, tenant, invoice["id"], "77.50"))
    partly = await fetch(live.client, tenant, path)
    assert (partly["status"], partly["amountPaid"], partly["amountDue"]) == (
        "uncollectible",
        "77.50",
        "200.00",
    )

    assert_succeeded(await pay_through(live.client, tenant, invoice["id"], "200.00"))

    paid = await fetch(live.client, tenant, path)
    assert_paid(paid)
    assert paid["amountPaid"] == TOTAL
    timeline = await fetch(live.client, tenant, f"{path}/timeline")
    assert [e["eventType"] for e in timeline["data"]][-3:] == [
        "payment.attempted",
        "payment.succeeded",
        "invoice.paid",
    ]


async def test_timeline_tells_the_flow_in_order(live: LiveServer, tenant: TenantHandle) -> None:
    invoice = await open_invoice(live.client, tenant, TOTAL)
    request_id = f"req-{uuid.uuid4().hex}"

    payment = await attempt(
        live.client, tenant, invoice["id"], TOTAL, **{"X-Request-Id": request_id}
    )
    payment = await settled(live.client, tenant, payment["id"])
    # The invoice.paid event commits with the payment, but wait on the invoice anyway, so
    # that a regression splitting them fails below rather than here.
    await eventually(
        lambda: has_status(live.client, tenant, f"/api/invoices/{invoice['id']}", "paid")
    )

    events = (await fetch(live.client, tenant, f"/api/invoices/{invoice['id']}/timeline"))["data"]

    assert [(e["eventType"], e["entityType"], e["entityId"]) for e in events] == [
        ("invoice.created", "invoice", invoice["id"]),
        ("invoice.finalized", "invoice", invoice["id"]),
        ("payment.attempted", "payment", payment["id"]),
        ("payment.succeeded", "payment", payment["id"]),
        ("invoice.paid", "invoice", invoice["id"]),
    ]
    api_key = {"type": "api_key", "id": tenant.key_id}
    gateway = {"type": "gateway", "id": None}
    assert [e["actor"] for e in events] == [api_key, api_key, api_key, gateway, gateway]
    occurred = [datetime.fromisoformat(e["occurredAt"]) for e in events]
    assert occurred == sorted(occurred)
    attempted, succeeded, paid = events[2], events[3], events[4]
    assert attempted["requestId"] == request_id
    # Both settle in the one webhook request, which is not the API call's.
    assert succeeded["requestId"] == paid["requestId"]
    assert succeeded["requestId"] not in (None, request_id)
    # Each event also carries its entity as GET showed it right after the change.
    snapshots = [event["data"].pop("object") for event in events]
    assert [snapshot["id"] for snapshot in snapshots] == [
        invoice["id"],
        invoice["id"],
        payment["id"],
        payment["id"],
        invoice["id"],
    ]
    # Created and finalized by one request: both events show the invoice that request left.
    assert [snapshot["status"] for snapshot in snapshots] == [
        "open",
        "open",
        "pending",
        "succeeded",
        "paid",
    ]
    assert snapshots[-1]["amountDue"] == "0.00"
    assert snapshots[-1]["items"] == invoice["items"]
    assert attempted["data"] == {
        "paymentId": payment["id"],
        "invoiceId": invoice["id"],
        "amount": TOTAL,
        "currency": "USD",
        "method": "card",
    }
    assert succeeded["data"] == {
        "paymentId": payment["id"],
        "invoiceId": invoice["id"],
        "amount": TOTAL,
        "currency": "USD",
        "gatewayReference": payment["gatewayReference"],
    }
    assert paid["data"] == {
        "invoiceId": invoice["id"],
        "number": invoice["number"],
        "amountPaid": TOTAL,
        "paidOutOfBand": False,
    }
    assert events[0]["data"]["total"] == TOTAL
    assert (events[1]["data"]["total"], events[1]["data"]["amountDue"]) == (TOTAL, TOTAL)


async def test_pending_token_runs_the_job_and_sends_no_webhook(
    live: LiveServer, tenant: TenantHandle, db: Database
) -> None:
    invoice = await open_invoice(live.client, tenant, TOTAL)

    payment = await attempt(live.client, tenant, invoice["id"], TOTAL, "tok_pending")

    job = await finished_job(db, payment["id"])
    assert (job.status, job.attempts, job.last_error) == ("done", 1, None)
    # The job is marked done only after its handler returned, and a webhook would have been
    # posted and answered before that: by now its absence is final.
    assert await inbox(db) == []
    still = await fetch(live.client, tenant, f"/api/payments/{payment['id']}")
    assert (still["status"], still["succeededAt"], still["failedAt"]) == ("pending", None, None)
    after = await fetch(live.client, tenant, f"/api/invoices/{invoice['id']}")
    assert (after["status"], after["amountPaid"], after["amountDue"]) == ("open", "0.00", TOTAL)
    # The unanswered payment keeps its reservation.
    assert_problem(
        await pay(live.client, tenant, invoice["id"], "0.01"), 409, "amount_exceeds_balance"
    )
    timeline = await fetch(live.client, tenant, f"/api/invoices/{invoice['id']}/timeline")
    assert [e["eventType"] for e in timeline["data"]][-1] == "payment.attempted"


async def test_each_webhook_is_entered_once_in_the_inbox(
    live: LiveServer, tenant: TenantHandle, db: Database
) -> None:
    invoice = await open_invoice(live.client, tenant, TOTAL)
    declined = await pay_through(live.client, tenant, invoice["id"], TOTAL, "tok_declined")
    partial = await pay_through(live.client, tenant, invoice["id"], "27.50")
    rest = await pay_through(live.client, tenant, invoice["id"], "250.00")
    assert_paid(await fetch(live.client, tenant, f"/api/invoices/{invoice['id']}"))
    for payment in (declined, partial, rest):
        await finished_job(db, payment["id"])

    jobs = await charge_jobs(db)
    messages = await inbox(db)

    # The simulator signs each delivery with its job's id, the same on every retry.
    by_id = {m.message_id: m for m in messages}
    assert len(by_id) == len(messages) == 3
    for payment, kind in (
        (declined, "payment.failed"),
        (partial, "payment.succeeded"),
        (rest, "payment.succeeded"),
    ):
        message = by_id[f"msg_{jobs[payment['id']].id.hex}"]
        assert (message.source, message.message_type, message.outcome) == (
            "gateway",
            kind,
            "processed",
        )
        assert message.tenant_id == uuid.UUID(tenant.id)


async def test_slow_gateway_answers_later(
    settings: Settings, db: Database, event_handlers: EventHandlers
) -> None:
    latency = timedelta(milliseconds=300)
    async with live_server(
        settings, db, event_handlers, gateway_latency_ms=latency // timedelta(milliseconds=1)
    ) as live:
        tenant = await make_tenant(live.client, ADMIN, "Acme", defaultTaxRate="11")
        invoice = await open_invoice(live.client, tenant, TOTAL)

        payment = await attempt(live.client, tenant, invoice["id"], TOTAL)

        right_after = await fetch(live.client, tenant, f"/api/payments/{payment['id']}")
        assert right_after["status"] == "pending"
        unpaid = await fetch(live.client, tenant, f"/api/invoices/{invoice['id']}")
        assert (unpaid["status"], unpaid["amountPaid"]) == ("open", "0.00")

        done = await settled(live.client, tenant, payment["id"])

        assert_succeeded(done)
        took = datetime.fromisoformat(done["succeededAt"]) - datetime.fromisoformat(
            done["attemptedAt"]
        )
        assert took >= latency
        paid = await fetch(live.client, tenant, f"/api/invoices/{invoice['id']}")
        assert_paid(paid)
        assert Decimal(paid["amountPaid"]) == Decimal(TOTAL)
