"""invoice.overdue: recorded once, by the worker, when an open invoice's due date passes."""

from datetime import UTC, date, datetime, timedelta

import httpx
from sqlalchemy import select, update

from tenvoice.config import Settings
from tenvoice.handlers import EVENT_HANDLERS, JOB_HANDLERS
from tenvoice.invoices import events
from tenvoice.invoices.jobs import OVERDUE_CHECK, overdue_from
from tenvoice.platform.db import Database, utcnow
from tenvoice.platform.outbox import JobStatus, OutboxJob
from tenvoice.platform.worker import Worker
from tests.conftest import TenantHandle, make_customer, make_invoice
from tests.invoices.builders import ISSUED_NUMBER, invoice_in
from tests.payments.support import pay
from tests.problems import assert_problem

AT = datetime(2026, 5, 1, 9, 0, tzinfo=UTC)


def test_recorded_once_and_only_after_the_due_date() -> None:
    invoice = invoice_in("open", due_date=date(2026, 3, 31))
    invoice.record_overdue(date(2026, 3, 31), AT)  # due today: not yet overdue
    assert invoice.pull_events() == []
    invoice.record_overdue(date(2026, 4, 1), AT)
    assert invoice.pull_events() == [
        events.InvoiceOverdue(invoice.id, ISSUED_NUMBER, "100.00", "2026-03-31")
    ]
    assert invoice.overdue_at == AT
    invoice.record_overdue(date(2026, 4, 2), AT)
    assert invoice.pull_events() == []


def test_not_recorded_for_invoices_no_longer_open() -> None:
    for action in ("void", "mark_uncollectible"):
        invoice = invoice_in("open", due_date=date(2026, 3, 31))
        getattr(invoice, action)(AT)
        invoice.pull_events()
        invoice.record_overdue(date(2026, 4, 5), AT)
        assert invoice.pull_events() == []
        assert invoice.overdue_at is None


def test_overdue_starts_the_day_after_the_due_date_in_utc() -> None:
    assert overdue_from(date(2026, 3, 31)) == datetime(2026, 4, 1, tzinfo=UTC)


async def _checks(db: Database) -> list[tuple[str, datetime, str]]:
    async with db.lookup() as connection:
        rows = await connection.execute(
            select(OutboxJob.payload, OutboxJob.run_after, OutboxJob.status).where(
                OutboxJob.kind == OVERDUE_CHECK
            )
        )
        return [(row.payload["invoiceId"], row.run_after, row.status) for row in rows]


async def _run_due_checks(db: Database, settings: Settings) -> int:
    """Bring every overdue check forward to now and let a worker run them."""
    async with db.autocommit() as connection:
        await connection.execute(
            update(OutboxJob).where(OutboxJob.kind == OVERDUE_CHECK).values(run_after=utcnow())
        )
    worker = Worker(db, settings, JOB_HANDLERS, EVENT_HANDLERS)
    try:
        return await worker.drain()
    finally:
        await worker.close()


async def _event_types(
    client: httpx.AsyncClient, tenant: TenantHandle, invoice_id: str
) -> list[str]:
    timeline = await client.get(f"/api/invoices/{invoice_id}/timeline", headers=tenant.headers)
    return [event["eventType"] for event in timeline.json()["data"]]


async def test_finalize_schedules_the_check_for_the_day_after_the_due_date(
    client: httpx.AsyncClient, db: Database, tenant_a: TenantHandle
) -> None:
    customer = await make_customer(client, tenant_a)
    draft = await make_invoice(
        client, tenant_a, customer["id"], issueDate="2026-11-01", dueDate="2099-06-30"
    )
    assert await _checks(db) == []  # drafts are never overdue
    response = await client.post(f"/api/invoices/{draft['id']}/finalize", headers=tenant_a.headers)
    assert response.status_code == 200, response.text
    assert await _checks(db) == [(draft["id"], datetime(2099, 7, 1, tzinfo=UTC), "pending")]


async def test_the_worker_records_it_once_with_the_system_as_actor(
    client: httpx.AsyncClient, db: Database, settings: Settings, tenant_a: TenantHandle
) -> None:
    customer = await make_customer(client, tenant_a)
    late = await make_invoice(
        client,
        tenant_a,
        customer["id"],
        issueDate="2026-01-01",
        dueDate="2026-01-31",
        finalize=True,
    )
    assert late["overdue"] is True
    assert await _run_due_checks(db, settings) == 1
    timeline = await client.get(f"/api/invoices/{late['id']}/timeline", headers=tenant_a.headers)
    overdue = [e for e in timeline.json()["data"] if e["eventType"] == "invoice.overdue"]
    assert len(overdue) == 1
    assert overdue[0]["actor"] == {"type": "system", "id": "worker"}
    snapshot = overdue[0]["data"].pop("object")
    # The invoice as GET shows it, but for its public link, which the log never stores
    # (its readers add it back).
    assert snapshot == {**late, "hostedUrl": None, "updatedAt": snapshot["updatedAt"]}
    assert overdue[0]["data"] == {
        "invoiceId": late["id"],
        "number": late["number"],
        "amountDue": "277.50",
        "dueDate": "2026-01-31",
    }
    # At least once: the check running again records nothing new.
    assert await _run_due_checks(db, settings) == 0
    async with db.autocommit() as connection:
        await connection.execute(
            update(OutboxJob)
            .where(OutboxJob.kind == OVERDUE_CHECK)
            .values(status=JobStatus.PENDING.value, attempts=0)
        )
    assert await _run_due_checks(db, settings) == 1
    assert (await _event_types(client, tenant_a, late["id"])).count("invoice.overdue") == 1


async def test_an_invoice_settled_before_its_due_date_is_never_overdue(
    client: httpx.AsyncClient, db: Database, settings: Settings, tenant_a: TenantHandle
) -> None:
    customer = await make_customer(client, tenant_a)
    voided = await make_invoice(client, tenant_a, customer["id"], finalize=True)
    response = await client.post(f"/api/invoices/{voided['id']}/void", headers=tenant_a.headers)
    assert response.status_code == 200, response.text
    assert await _run_due_checks(db, settings) == 1
    assert "invoice.overdue" not in await _event_types(client, tenant_a, voided["id"])
    assert [status for _, _, status in await _checks(db)] == ["done"]


async def test_payments_still_settle_an_overdue_invoice(
    client: httpx.AsyncClient, db: Database, settings: Settings, tenant_a: TenantHandle
) -> None:
    customer = await make_customer(client, tenant_a)
    late = await make_invoice(
        client, tenant_a, customer["id"], issueDate="2026-01-01", dueDate="2026-01-31"
    )
    response = await client.post(f"/api/invoices/{late['id']}/finalize", headers=tenant_a.headers)
    await _run_due_checks(db, settings)
    # Overdue is a fact on the timeline, not a status: the invoice takes payments as before.
    attempt = await pay(client, tenant_a, late["id"], "277.51", token="tok_pending")
    assert_problem(attempt, 409, "amount_exceeds_balance")
    attempt = await pay(client, tenant_a, late["id"], "277.50", token="tok_pending")
    assert attempt.status_code == 201, attempt.text
    assert response.json()["dueDate"] == "2026-01-31"
    assert utcnow().date() > date(2026, 1, 31) + timedelta(days=1)
