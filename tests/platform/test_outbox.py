"""The transactional outbox and its worker, on both databases.

Jobs are written with the change that calls for them, claimed under a lease, run at least
once, retried with jittered exponential backoff and finally kept as dead. The worker here
runs test job handlers; the gateway's own job is exercised end to end in
`test_worker_kill.py`.
"""

import asyncio
import os
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import Row, event, insert, select, update

from tenvoice.config import Settings
from tenvoice.gateway.simulator import CHARGE
from tenvoice.handlers import EVENT_HANDLERS
from tenvoice.main import create_app
from tenvoice.payments.events import ChargeRequested
from tenvoice.platform.db import Database, utcnow
from tenvoice.platform.idempotency import IdempotencyKey
from tenvoice.platform.messages import DomainEvent, EventHandler
from tenvoice.platform.outbox import Job, JobHandler, JobHandlers, JobStatus, OutboxJob, enqueue
from tenvoice.platform.tenancy import Actor, RequestContext
from tenvoice.platform.uow import UnitOfWork
from tenvoice.platform.worker import DONE_RETENTION, JobContext, Worker
from tests.conftest import Backend, TenantHandle, make_customer, make_invoice
from tests.live import eventually
from tests.payments.support import pay

J = OutboxJob
TENVOICE = Path(__file__).resolve().parents[2] / ".venv" / "bin" / "tenvoice"
TESTER = Actor("system", "outbox-test")


# -- helpers -------------------------------------------------------------------------------


@asynccontextmanager
async def make_worker(
    db: Database, settings: Settings, jobs: JobHandlers, **overrides: Any
) -> AsyncIterator[Worker]:
    worker = Worker(
        db,
        settings.model_copy(update={"worker_poll_seconds": 0.01, **overrides}),
        jobs=jobs,
        event_handlers=EVENT_HANDLERS,
    )
    try:
        yield worker
    finally:
        await worker.close()


async def add_job(
    db: Database,
    kind: str,
    payload: dict[str, Any] | None = None,
    *,
    tenant_id: uuid.UUID | None = None,
    delay: timedelta = timedelta(0),
) -> uuid.UUID:
    async with db.write(tenant_id) as session:
        job = enqueue(session, kind, payload or {}, tenant_id=tenant_id, delay=delay)
        await session.commit()
    return job.id


async def add_jobs(db: Database, kind: str, count: int) -> list[uuid.UUID]:
    async with db.write(None) as session:
        jobs = [enqueue(session, kind, {"n": n}, tenant_id=None) for n in range(count)]
        await session.commit()
    return [job.id for job in jobs]


async def job_row(db: Database, job_id: uuid.UUID) -> Row[Any]:
    async with db.lookup() as connection:
        return (await connection.execute(select(J.__table__).where(J.id == job_id))).one()


async def all_jobs(db: Database, kind: str | None = None) -> list[Row[Any]]:
    statement = select(J.__table__).order_by(J.id)
    if kind is not None:
        # Finalizing an invoice schedules its overdue check too; some tests watch one kind.
        statement = statement.where(J.kind == kind)
    async with db.lookup() as connection:
        return list((await connection.execute(statement)).all())


async def make_due(db: Database, job_id: uuid.UUID) -> None:
    """Skip a job's backoff wait: what the clock would do, without waiting for it."""
    async with db.autocommit() as connection:
        await connection.execute(
            update(J).where(J.id == job_id).values(run_after=utcnow() - timedelta(seconds=1))
        )


def recording(calls: list[Job], *, failures: int = 0) -> JobHandler:
    """A handler that records each run and fails its first `failures` runs."""

    async def handle(job: Job, context: JobContext) -> None:
        calls.append(job)
        if len(calls) <= failures:
            raise ValueError(f"receiver down (run {len(calls)})")

    return handle


async def explode(job: Job, context: JobContext) -> None:
    raise ValueError(f"receiver down (attempt {job.attempt})")


# -- written with the change, or not at all ------------------------------------------------


class CommandFailed(RuntimeError):
    pass


async def _enqueue_then_fail(uow: UnitOfWork, marker: str) -> None:
    enqueue(uow.session, "test.record", {"marker": marker}, tenant_id=uow.context.tenant_id)
    # Flushed, so the row really reached the database before the command failed.
    await uow.session.flush()
    raise CommandFailed("the command failed after enqueueing")


async def _enqueue(uow: UnitOfWork, marker: str) -> uuid.UUID:
    job = enqueue(uow.session, "test.record", {"marker": marker}, tenant_id=uow.context.tenant_id)
    return job.id


async def test_job_exists_exactly_when_its_unit_of_work_commits(db: Database) -> None:
    tenant_id = uuid.uuid4()
    context = RequestContext(TESTER, tenant_id, None)
    with pytest.raises(CommandFailed):
        async with db.write(tenant_id) as session:
            await UnitOfWork(session, context, EVENT_HANDLERS).run(_enqueue_then_fail, "lost")
    assert await all_jobs(db) == []

    async with db.write(tenant_id) as session:
        job_id = await UnitOfWork(session, context, EVENT_HANDLERS).run(_enqueue, "kept")
    (row,) = await all_jobs(db)
    assert row.id == job_id
    assert row.payload == {"marker": "kept"}
    assert row.tenant_id == tenant_id
    assert (row.status, row.attempts, row.finished_at) == (JobStatus.PENDING, 0, None)


async def _explode_on(event: DomainEvent, uow: UnitOfWork) -> None:
    raise CommandFailed(f"handler failed on {event.event_type}")


async def test_payment_writes_one_charge_job_only_when_it_is_committed(
    client: httpx.AsyncClient,
    settings: Settings,
    db: Database,
    tenant_a: TenantHandle,
) -> None:
    customer = await make_customer(client, tenant_a)
    invoice = await make_invoice(client, tenant_a, customer["id"], finalize=True)

    refused = await pay(client, tenant_a, invoice["id"], "1000.00")
    assert refused.status_code == 409, refused.text
    assert await all_jobs(db, CHARGE) == []

    # The charge job is written by an event handler; one after it failing takes the
    # payment and its job back together.
    handlers: dict[type, list[EventHandler]] = {k: list(v) for k, v in EVENT_HANDLERS.items()}
    handlers[ChargeRequested] = [*handlers[ChargeRequested], _explode_on]
    failing_app = create_app(settings, db=db, event_handlers=handlers)
    transport = httpx.ASGITransport(app=failing_app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://tenvoice.test") as failing:
        broken = await pay(failing, tenant_a, invoice["id"], "100.00")
    assert broken.status_code == 500
    assert await all_jobs(db, CHARGE) == []
    listed = await client.get("/api/payments", headers=tenant_a.headers)
    assert listed.json()["data"] == []

    paid = await pay(client, tenant_a, invoice["id"], "100.00", token="tok_declined")
    assert paid.status_code == 201, paid.text
    payment = paid.json()
    (row,) = await all_jobs(db, CHARGE)
    assert row.kind == CHARGE
    assert row.tenant_id == uuid.UUID(tenant_a.id)
    assert row.status == JobStatus.PENDING
    assert row.attempts == 0
    assert row.payload["paymentId"] == payment["id"]
    assert row.payload["invoiceId"] == invoice["id"]
    assert (row.payload["amount"], row.payload["currency"]) == ("100.00", "USD")
    assert row.payload["paymentToken"] == "tok_declined"


# -- running jobs --------------------------------------------------------------------------


async def test_drain_runs_a_due_job_once_and_leaves_a_future_one(
    db: Database, settings: Settings
) -> None:
    calls: list[Job] = []
    tenant_id = uuid.uuid4()
    due = await add_job(db, "test.record", {"to": "due"}, tenant_id=tenant_id)
    later = await add_job(db, "test.record", {"to": "later"}, delay=timedelta(hours=1))
    async with make_worker(db, settings, {"test.record": recording(calls)}) as worker:
        before = utcnow()
        assert await worker.drain() == 1
        after = utcnow()
        assert await worker.drain() == 0

    (job,) = calls
    assert job == Job(due, tenant_id, "test.record", {"to": "due"}, 1)
    row = await job_row(db, due)
    assert (row.status, row.attempts, row.last_error) == (JobStatus.DONE, 1, None)
    assert row.finished_at is not None
    assert before <= row.finished_at <= after
    waiting = await job_row(db, later)
    assert (waiting.status, waiting.attempts, waiting.finished_at) == (JobStatus.PENDING, 0, None)
    assert waiting.run_after > after + timedelta(minutes=59)


@pytest.mark.parametrize(("base", "cap"), [(1.0, 600.0), (0.25, 3.0), (10.0, 10.0)])
async def test_backoff_doubles_with_jitter_up_to_its_cap(
    settings: Settings, db: Database, base: float, cap: float
) -> None:
    overrides = {"worker_backoff_seconds": base, "worker_backoff_max_seconds": cap}
    async with make_worker(db, settings, {}, **overrides) as worker:
        for attempt in range(1, 16):
            step = min(base * 2 ** (attempt - 1), cap)
            waits = [worker.backoff(attempt).total_seconds() for _ in range(300)]
            assert all(step / 2 <= wait <= step for wait in waits), (attempt, step, waits)
            # Jittered over the whole half-to-all range, not one fixed value.
            assert min(waits) < step * 0.6
            assert max(waits) > step * 0.9


async def test_failing_job_backs_off_then_dies_with_its_last_error(
    db: Database, settings: Settings
) -> None:
    calls: list[Job] = []

    async def failing(job: Job, context: JobContext) -> None:
        calls.append(job)
        await explode(job, context)

    job_id = await add_job(db, "test.failing")
    async with make_worker(
        db,
        settings,
        {"test.failing": failing},
        worker_backoff_seconds=10,
        worker_backoff_max_seconds=30,
        worker_max_attempts=4,
    ) as worker:
        # The third wait would be 40 s uncapped.
        for attempt, step in ((1, 10.0), (2, 20.0), (3, 30.0)):
            before = utcnow()
            assert await worker.drain() == 1
            after = utcnow()
            row = await job_row(db, job_id)
            assert row.status == JobStatus.PENDING
            assert row.attempts == attempt
            assert row.last_error == f"ValueError: receiver down (attempt {attempt})"
            assert row.finished_at is None
            assert before + timedelta(seconds=step / 2) <= row.run_after
            assert row.run_after <= after + timedelta(seconds=step)
            assert await worker.claim(10) == []
            await make_due(db, job_id)

        before = utcnow()
        assert await worker.drain() == 1
        row = await job_row(db, job_id)
        assert row.status == JobStatus.DEAD
        assert row.attempts == 4
        assert row.last_error == "ValueError: receiver down (attempt 4)"
        assert row.finished_at is not None
        assert row.finished_at >= before

        # Even when its time has come, a dead job is left for an operator.
        await make_due(db, job_id)
        assert await worker.claim(10) == []
        assert await worker.drain() == 0
    assert [job.attempt for job in calls] == [1, 2, 3, 4]


async def test_job_that_fails_twice_then_succeeds_ends_done_with_error_cleared(
    db: Database, settings: Settings
) -> None:
    calls: list[Job] = []
    job_id = await add_job(db, "test.flaky", {"x": 1})
    async with make_worker(
        db, settings, {"test.flaky": recording(calls, failures=2)}, worker_max_attempts=3
    ) as worker:
        for run in (1, 2):
            assert await worker.drain() == 1
            row = await job_row(db, job_id)
            assert (row.status, row.attempts) == (JobStatus.PENDING, run)
            assert row.last_error == f"ValueError: receiver down (run {run})"
            await make_due(db, job_id)
        assert await worker.drain() == 1

    row = await job_row(db, job_id)
    assert (row.status, row.attempts, row.last_error) == (JobStatus.DONE, 3, None)
    assert row.finished_at is not None
    assert [job.attempt for job in calls] == [1, 2, 3]


async def test_unknown_job_kind_is_retried_then_dead_naming_the_kind(
    db: Database, settings: Settings
) -> None:
    job_id = await add_job(db, "test.nobody_handles_this")
    expected = "UnknownJobKind: no handler for job kind 'test.nobody_handles_this'"
    async with make_worker(db, settings, {}, worker_max_attempts=2) as worker:
        assert await worker.drain() == 1
        row = await job_row(db, job_id)
        assert (row.status, row.attempts, row.last_error) == (JobStatus.PENDING, 1, expected)
        await make_due(db, job_id)
        assert await worker.drain() == 1
    row = await job_row(db, job_id)
    assert (row.status, row.attempts, row.last_error) == (JobStatus.DEAD, 2, expected)


# -- leases --------------------------------------------------------------------------------


async def test_job_of_a_vanished_worker_returns_when_its_lease_runs_out(
    db: Database, settings: Settings
) -> None:
    lease = 1.0
    calls: list[Job] = []
    job_id = await add_job(db, "test.leased")
    ok = {"test.leased": recording(calls)}
    failing = {"test.leased": explode}
    async with (
        make_worker(db, settings, ok, worker_lease_seconds=lease) as vanished,
        make_worker(db, settings, ok, worker_lease_seconds=lease) as second,
        make_worker(db, settings, failing, worker_lease_seconds=lease) as failing_late,
    ):
        claimed_at = time.monotonic()
        (first_claim,) = await vanished.claim(5)
        assert first_claim.attempt == 1
        lease_end = (await job_row(db, job_id)).run_after
        # While the lease holds, nobody else sees the job.
        assert await second.claim(5) == []
        assert time.monotonic() - claimed_at < lease, "too slow to observe the lease"

        async def reclaimed() -> list[Job]:
            return await second.claim(5)

        (second_claim,) = await eventually(reclaimed, timeout=10, interval=0.05)
        assert utcnow() >= lease_end
        assert second_claim.id == job_id
        assert second_claim.attempt == 2
        held = await job_row(db, job_id)
        assert (held.status, held.attempts) == (JobStatus.PENDING, 2)

        # The vanished worker comes back and reports on its old attempt: neither its
        # success nor its failure may touch the newer claim.
        await vanished.execute(first_claim)
        await failing_late.execute(first_claim)
        assert await job_row(db, job_id) == held

        await second.execute(second_claim)
        done = await job_row(db, job_id)
        assert (done.status, done.attempts, done.last_error) == (JobStatus.DONE, 2, None)

        # A late failure report after the job is done changes nothing either.
        await failing_late.execute(first_claim)
        assert await job_row(db, job_id) == done
    # The vanished worker's late run, then the second worker's.
    assert [job.attempt for job in calls] == [1, 2]


async def test_job_whose_worker_vanishes_on_every_attempt_ends_dead(
    db: Database, settings: Settings
) -> None:
    job_id = await add_job(db, "test.poison")
    async with make_worker(
        db, settings, {}, worker_lease_seconds=0.2, worker_max_attempts=2
    ) as worker:

        async def claimed() -> list[Job]:
            return await worker.claim(5)

        # Two attempts, each claimed and never reported on: the worker died each time.
        for attempt in (1, 2):
            (job,) = await eventually(claimed, timeout=10, interval=0.02)
            assert job.attempt == attempt

        async def lease_over() -> bool:
            return bool((await job_row(db, job_id)).run_after < utcnow())

        await eventually(lease_over, timeout=10)
        # Out of attempts: kept for an operator, not handed out a third time.
        third = await worker.claim(5)
        row = await job_row(db, job_id)
    assert third == []
    assert row.status == JobStatus.DEAD
    assert row.last_error is not None
    assert "lost" in row.last_error


async def test_job_running_past_its_lease_is_cut_off_and_retried(
    db: Database, settings: Settings
) -> None:
    never = asyncio.Event()

    async def hangs(job: Job, context: JobContext) -> None:
        await never.wait()

    job_id = await add_job(db, "test.hangs")
    async with make_worker(db, settings, {"test.hangs": hangs}, worker_lease_seconds=0.3) as w:
        started = time.monotonic()
        assert await w.drain() == 1
        assert time.monotonic() - started < 5
    row = await job_row(db, job_id)
    assert (row.status, row.attempts, row.last_error) == (JobStatus.PENDING, 1, "TimeoutError")


# -- concurrency ---------------------------------------------------------------------------


@asynccontextmanager
async def separate_database(db: Database) -> AsyncIterator[Database]:
    """Another engine on the same database, as a second worker process would have."""
    other = Database(db.url, pool_size=5)
    try:
        yield other
    finally:
        await other.dispose()


async def test_concurrent_claims_never_share_a_job(db: Database, settings: Settings) -> None:
    ids = await add_jobs(db, "test.record", 60)
    claimed: list[uuid.UUID] = []
    async with (
        separate_database(db) as other_db,
        make_worker(db, settings, {}) as one,
        make_worker(other_db, settings, {}) as two,
    ):
        while True:
            first, second = await asyncio.gather(one.claim(7), two.claim(7))
            assert not {job.id for job in first} & {job.id for job in second}
            if not first and not second:
                break
            claimed += [job.id for job in (*first, *second)]
    assert Counter(claimed) == Counter(ids)
    assert {row.attempts for row in await all_jobs(db)} == {1}


async def test_a_claim_takes_half_of_a_burst_and_leaves_the_rest_to_the_next_worker(
    db: Database, settings: Settings
) -> None:
    ids = await add_jobs(db, "test.record", 3)
    async with (
        separate_database(db) as other_db,
        make_worker(db, settings, {}) as one,
        make_worker(other_db, settings, {}) as two,
    ):
        first = await one.claim(16)
        second = await two.claim(16)
        assert [len(first), len(second)] == [2, 1]
        assert sorted(job.id for job in (*first, *second)) == sorted(ids)
        # Beyond twice the free slots, a claim fills them all.
        await add_jobs(db, "test.record", 40)
        assert len(await one.claim(16)) == 16
        assert len(await two.claim(16)) == 12  # half of the 24 left


async def test_three_running_workers_run_each_of_200_jobs_exactly_once(
    db: Database, settings: Settings
) -> None:
    ids = await add_jobs(db, "test.record", 200)
    calls: list[Job] = []

    async def record(job: Job, context: JobContext) -> None:
        calls.append(job)
        await asyncio.sleep(0)  # let the other workers' claims interleave

    stop = asyncio.Event()
    async with (
        separate_database(db) as db_two,
        separate_database(db) as db_three,
        make_worker(db, settings, {"test.record": record}, worker_concurrency=8) as one,
        make_worker(db_two, settings, {"test.record": record}, worker_concurrency=8) as two,
        make_worker(db_three, settings, {"test.record": record}, worker_concurrency=8) as three,
    ):
        runs = [asyncio.create_task(worker.run(stop)) for worker in (one, two, three)]
        try:

            async def all_done() -> bool:
                rows = await all_jobs(db)
                return all(row.status == JobStatus.DONE for row in rows)

            await eventually(all_done, timeout=60)
        finally:
            stop.set()
            await asyncio.wait_for(asyncio.gather(*runs), 30)
    assert Counter(job.id for job in calls) == Counter(ids)
    rows = await all_jobs(db)
    assert len(rows) == 200
    assert {(row.status, row.attempts, row.last_error) for row in rows} == {
        (JobStatus.DONE, 1, None)
    }


async def test_jobs_finishing_together_share_one_done_update_that_keeps_each_attempt_guard(
    db: Database, settings: Settings
) -> None:
    ids = await add_jobs(db, "test.batch", 24)
    statements: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.lstrip().upper().startswith("UPDATE OUTBOX_JOBS SET STATUS"):
            statements.append(statement)

    async with make_worker(db, settings, {"test.batch": recording([])}) as worker:
        claimed: list[Job] = []
        while len(claimed) < 24:  # half of what is due at each claim
            claimed += await worker.claim(24)
        # One job's lease is taken over meanwhile: its stale attempt must not be marked done.
        async with db.autocommit() as connection:
            await connection.execute(update(J).where(J.id == ids[0]).values(attempts=2))
        event.listen(db.write_engine.sync_engine, "before_cursor_execute", count)
        try:
            await asyncio.gather(*(worker.execute(job) for job in claimed))
        finally:
            event.remove(db.write_engine.sync_engine, "before_cursor_execute", count)
    rows = {row.id: row for row in await all_jobs(db)}
    assert rows[ids[0]].status == JobStatus.PENDING
    assert {rows[job_id].status for job_id in ids[1:]} == {JobStatus.DONE}
    # 24 jobs finished together: a handful of commits, not one each.
    assert 1 <= len(statements) <= 4, len(statements)


# -- stopping ------------------------------------------------------------------------------


async def test_run_stops_promptly_and_lets_the_running_job_finish(
    db: Database, settings: Settings
) -> None:
    started = asyncio.Event()
    release = asyncio.Event()

    async def slow(job: Job, context: JobContext) -> None:
        started.set()
        await release.wait()

    job_id = await add_job(db, "test.slow")
    stop = asyncio.Event()
    # A long poll interval: stopping must not wait for it.
    async with make_worker(db, settings, {"test.slow": slow}, worker_poll_seconds=30) as worker:
        running = asyncio.create_task(worker.run(stop))
        try:
            await asyncio.wait_for(started.wait(), 10)
            stop.set()
            # Stopped, but the job is still running: the worker waits for it.
            finished, _ = await asyncio.wait({running}, timeout=0.3)
            assert not finished
            assert (await job_row(db, job_id)).status == JobStatus.PENDING
            release.set()
            await asyncio.wait_for(running, 5)
        finally:
            release.set()
            stop.set()
            await asyncio.wait_for(running, 15)
    row = await job_row(db, job_id)
    assert (row.status, row.attempts) == (JobStatus.DONE, 1)


async def test_idle_run_stops_without_waiting_for_its_poll(
    db: Database, settings: Settings
) -> None:
    calls: list[Job] = []
    job_id = await add_job(db, "test.record")
    stop = asyncio.Event()
    async with make_worker(
        db, settings, {"test.record": recording(calls)}, worker_poll_seconds=30
    ) as worker:
        running = asyncio.create_task(worker.run(stop))
        try:

            async def done() -> bool:
                return bool((await job_row(db, job_id)).status == JobStatus.DONE)

            await eventually(done)
            # The worker is now idle in a 30 s poll.
            asked = time.monotonic()
            stop.set()
            await asyncio.wait_for(running, 5)
            assert time.monotonic() - asked < 2
        finally:
            stop.set()
            await asyncio.wait_for(running, 15)
    assert len(calls) == 1


# -- housekeeping --------------------------------------------------------------------------


def _job_values(
    status: JobStatus, finished: datetime | None, *, created: datetime | None = None
) -> dict[str, Any]:
    now = utcnow()
    created = created or finished or now
    return {
        "id": uuid.uuid4(),
        "tenant_id": None,
        "kind": "test.old",
        "payload": {},
        "status": status.value,
        "attempts": 1,
        "run_after": created,
        "last_error": "ValueError: gone" if status == JobStatus.DEAD else None,
        "created_at": created,
        "updated_at": finished or created,
        "finished_at": finished,
    }


def _key_values(key: str, created: datetime) -> dict[str, Any]:
    return {
        "scope": "admin",
        "key": key,
        "fingerprint": "0" * 64,
        "status": "completed",
        "response_status": 201,
        "response_headers": [],
        "response_body": b"{}",
        "created_at": created,
        "locked_until": created + timedelta(seconds=60),
    }


async def test_maintenance_purges_old_done_jobs_and_expired_idempotency_keys(
    db: Database, settings: Settings
) -> None:
    now = utcnow()
    day = timedelta(days=1)
    old_done = _job_values(JobStatus.DONE, now - DONE_RETENTION - day)
    recent_done = _job_values(JobStatus.DONE, now - DONE_RETENTION + day)
    old_dead = _job_values(JobStatus.DEAD, now - 30 * day)
    old_pending = _job_values(JobStatus.PENDING, None, created=now - 30 * day)
    hour = timedelta(hours=1)
    keys = {
        "expired": _key_values("expired", now - 49 * hour),
        "kept-47h": _key_values("kept-47h", now - 47 * hour),
        "fresh": _key_values("fresh", now - hour),
    }
    async with db.autocommit() as connection:
        await connection.execute(insert(J), [old_done, recent_done, old_dead, old_pending])
        await connection.execute(insert(IdempotencyKey), list(keys.values()))

    # Kept 48 h here: a key 25 h old outlives the 24 h default.
    async with make_worker(db, settings, {}, idempotency_retention_hours=48) as worker:
        await worker.maintain()
        await worker.maintain()  # and again: nothing more goes

    remaining = {row.id for row in await all_jobs(db)}
    assert remaining == {recent_done["id"], old_dead["id"], old_pending["id"]}
    async with db.lookup() as connection:
        kept = set((await connection.scalars(select(IdempotencyKey.__table__.c.key))).all())
    assert kept == {"kept-47h", "fresh"}


# -- the operator's view -------------------------------------------------------------------


async def tenvoice(backend: Backend, *args: str) -> tuple[int, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TENVOICE_")}
    env["TENVOICE_DATABASE_URL"] = backend.url
    process = await asyncio.create_subprocess_exec(
        TENVOICE,
        *args,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        output, _ = await asyncio.wait_for(process.communicate(), 60)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode is not None
    return process.returncode, output.decode()


async def test_jobs_command_lists_counts_and_dead_jobs_and_retries_one(
    backend: Backend, db: Database, settings: Settings
) -> None:
    tenant_id = uuid.uuid4()
    await add_job(db, "test.waiting", delay=timedelta(hours=1))
    await add_job(db, "test.waiting", delay=timedelta(hours=1))
    await add_job(db, "test.record")
    dead_id = await add_job(db, "test.failing", tenant_id=tenant_id)
    jobs = {"test.record": recording([]), "test.failing": explode}
    async with make_worker(db, settings, jobs, worker_max_attempts=1) as worker:
        assert await worker.drain() == 2

    code, output = await tenvoice(backend, "jobs")
    assert code == 0, output
    lines = output.splitlines()
    assert "pending  2" in lines, output
    assert "done     1" in lines, output
    assert "dead     1" in lines, output
    assert f"dead {dead_id} test.failing tenant={tenant_id} attempts=1" in lines, output
    assert any(
        line.startswith("  at ") and line.endswith("Z: ValueError: receiver down (attempt 1)")
        for line in lines
    ), output

    code, output = await tenvoice(backend, "jobs", "--retry", str(dead_id))
    assert code == 0, output
    assert f"job {dead_id} queued again" in output
    row = await job_row(db, dead_id)
    assert (row.status, row.attempts, row.finished_at) == (JobStatus.PENDING, 0, None)
    assert row.run_after <= utcnow()

    code, output = await tenvoice(backend, "jobs", "--retry", str(dead_id))
    assert code == 1, output
    assert f"no dead job {dead_id}" in output
    code, output = await tenvoice(backend, "jobs", "--retry", "not-a-uuid")
    assert code == 2, output

    # Queued again, it runs like any other job (the waiting ones are not due yet).
    async with make_worker(db, settings, {"test.failing": recording([])}) as worker:
        assert await worker.drain() == 1
    row = await job_row(db, dead_id)
    assert (row.status, row.attempts, row.last_error) == (JobStatus.DONE, 1, None)
