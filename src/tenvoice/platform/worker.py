"""The outbox worker: claims due jobs, runs them at least once, retries with backoff.

Claiming moves a job's `run_after` to the end of a lease and counts the attempt, in one
statement (`FOR UPDATE SKIP LOCKED` on PostgreSQL, so any number of workers share the
table without waiting on each other; SQLite's write transactions are exclusive anyway).
Nothing is held while the job runs: a worker killed mid-job simply never reports back,
its lease runs out and another worker takes the job again. A job that keeps failing is
retried after exponentially growing waits and ends `dead` with its last error kept.
"""

import asyncio
import contextvars
import logging
import random
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import ColumnElement, and_, delete, func, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncConnection

from tenvoice.config import Settings
from tenvoice.platform import idempotency, logs, tracing
from tenvoice.platform.db import Database, utcnow
from tenvoice.platform.host_pools import HostPools
from tenvoice.platform.messages import EventHandlers
from tenvoice.platform.metrics import JOB_LATENCY, JOB_RUN, JOBS
from tenvoice.platform.outage import Outage
from tenvoice.platform.outbox import Job, JobHandlers, JobStatus, OutboxJob
from tenvoice.platform.tenancy import Actor, RequestContext
from tenvoice.platform.uow import UnitOfWork

log = logging.getLogger("tenvoice.worker")

J = OutboxJob
WORKER = Actor("system", "worker")
# Finished jobs are kept this long for inspection; dead ones until an operator acts.
DONE_RETENTION = timedelta(days=7)
MAINTENANCE_EVERY_SECONDS = 60.0
SHUTDOWN_GRACE = 10.0
_ERROR_LIMIT = 2000


class UnknownJobKind(RuntimeError):
    pass


@dataclass(frozen=True)
class JobContext:
    """What a job handler may use: the database, settings and an HTTP client."""

    db: Database
    settings: Settings
    http: httpx.AsyncClient
    event_handlers: EventHandlers
    # Outbound webhooks get pools of their own: no proxy from the environment (each
    # delivery connects to the address the SSRF guard resolved), no redirects followed.
    webhook_pools: HostPools
    # How the SSRF guard resolves names (host, port -> addresses); None is the system's.
    # Tests put a DNS-rebinding one here.
    resolver: Callable[[str, int], Awaitable[list[str]]] | None = None

    @asynccontextmanager
    async def unit_of_work(self, tenant_id: uuid.UUID | None) -> AsyncIterator[UnitOfWork]:
        """A unit of work in the job's tenant, acting as the system."""
        async with self.db.write(tenant_id) as session:
            yield UnitOfWork(session, RequestContext(WORKER, tenant_id, None), self.event_handlers)


class Worker:
    def __init__(
        self,
        db: Database,
        settings: Settings,
        jobs: JobHandlers,
        event_handlers: EventHandlers,
        *,
        http: httpx.AsyncClient | None = None,
    ) -> None:
        self.db = db
        self.settings = settings
        self.jobs = jobs
        self._own_http = http is None
        http = http or httpx.AsyncClient(timeout=10.0)
        tracing.instrument_client(http)
        self.context = JobContext(db, settings, http, event_handlers, HostPools())
        self.concurrency = settings.worker_concurrency
        self.lease = timedelta(seconds=settings.worker_lease_seconds)
        self._completions = _Completions(db)

    async def close(self) -> None:
        if self._own_http:
            await self.context.http.aclose()
        await self.context.webhook_pools.aclose()

    # -- the loop ----------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Work until `stop` is set, then let running jobs finish (within their lease)."""
        loop = asyncio.get_running_loop()
        running: set[asyncio.Task[None]] = set()
        slot_freed = asyncio.Event()
        next_maintenance = loop.time()
        log.info("outbox worker started (concurrency %d)", self.concurrency)
        outage = Outage(log, "the database")
        while not stop.is_set():
            free = self.concurrency - len(running)
            claimed: list[Job] = []
            if free > 0:
                try:
                    # Polling is no job's work: it would be a one-span trace every poll.
                    with tracing.untraced():
                        claimed = await self.claim(free)
                except Exception as exc:
                    # The database is down or busy: keep the process, and wait longer each
                    # time rather than hammer it (and the log) every poll.
                    wait = outage.failed(_describe(exc), "the outbox worker is paused")
                    await _first_of(stop, within=wait)
                    continue
                outage.recovered()
            # After a claim went through, so that an outage is not reported twice.
            if loop.time() >= next_maintenance:
                with tracing.untraced():
                    await self.maintain()
                next_maintenance = loop.time() + MAINTENANCE_EVERY_SECONDS
            for job in claimed:
                task = asyncio.create_task(self.execute(job))
                running.add(task)
                task.add_done_callback(running.discard)
                task.add_done_callback(lambda _: slot_freed.set())
            if claimed and len(claimed) == free:
                await asyncio.sleep(0)  # more may be due right now
                continue
            slot_freed.clear()
            await _first_of(stop, slot_freed, within=self.settings.worker_poll_seconds)
        if running:
            # Jobs still running after the grace period are given up: their leases run out
            # and another worker retries them.
            await asyncio.wait(running, timeout=min(self.lease.total_seconds(), SHUTDOWN_GRACE))
        log.info("outbox worker stopped")

    async def drain(self) -> int:
        """Run due jobs until none is left; how many ran. For tests and one-off runs."""
        ran = 0
        while claimed := await self.claim(self.concurrency):
            await asyncio.gather(*(self.execute(job) for job in claimed))
            ran += len(claimed)
        return ran

    # -- one job -----------------------------------------------------------------------

    async def claim(self, limit: int) -> list[Job]:
        now = utcnow()
        is_due = (
            J.status == JobStatus.PENDING.value,
            J.run_after <= now,
            J.attempts < self.settings.worker_max_attempts,
        )
        # Half of what is due (rounded up, counted no further than needed): a burst is
        # shared with the other workers rather than taken whole by the first one to poll,
        # which matters for jobs that keep a process busy for seconds (an endpoint's
        # dispatch). What is left is this worker's again at its next poll.
        counted = select(J.id).where(*is_due).limit(2 * limit).subquery()
        share = select((func.count() + 1) // 2).select_from(counted).scalar_subquery()
        due = select(J.id, J.run_after).where(*is_due).order_by(J.run_after).limit(share)
        claim = update(J).values(
            run_after=now + self.lease, attempts=J.attempts + 1, updated_at=now
        )
        claimed = (J.id, J.tenant_id, J.kind, J.payload, J.attempts, J.trace_context)
        rows: Sequence[tuple[Any, ...]]
        if self.db.dialect == "postgresql":
            # Joined rather than `IN`, so that RETURNING can give each job's due time (for
            # its latency) from before the claim moved it: still one statement.
            locked = due.with_for_update(skip_locked=True).subquery()
            async with self.db.autocommit() as connection:
                await self._bury_lost(connection, now)
                rows = (
                    await connection.execute(
                        claim.where(J.id == locked.c.id).returning(*claimed, locked.c.run_after)
                    )
                ).all()
        else:
            # An idle poll must not take SQLite's one write lock from the API's writers:
            # look first (WAL readers take no lock), claim only when something is due.
            async with self.db.lookup() as connection:
                idle = await connection.scalar(due.with_only_columns(J.id).limit(1)) is None
                if idle and not await self._lost(connection, now):
                    return []
            async with self.db.autocommit() as connection:
                await self._bury_lost(connection, now)
                # SQLite's RETURNING sees only the updated row: the due times are read
                # first, in the same write transaction.
                due_at = {row.id: row.run_after for row in await connection.execute(due)}
                updated = await connection.execute(
                    claim.where(J.id.in_(list(due_at))).returning(*claimed)
                )
                rows = [(*row, due_at[row.id]) for row in updated]
        return [Job(*row) for row in rows]

    def _lost_on_last_attempt(self, now: datetime) -> ColumnElement[bool]:
        # A worker that dies never reports its failure, so a job that kills its worker every
        # time would never be marked dead by _failed: its last lease running out does it.
        return and_(
            J.status == JobStatus.PENDING.value,
            J.attempts >= self.settings.worker_max_attempts,
            J.run_after <= now,
        )

    async def _lost(self, connection: AsyncConnection, now: datetime) -> bool:
        found = await connection.scalar(
            select(J.id).where(self._lost_on_last_attempt(now)).limit(1)
        )
        return found is not None

    async def _bury_lost(self, connection: AsyncConnection, now: datetime) -> None:
        buried = await connection.execute(
            update(J)
            .where(self._lost_on_last_attempt(now))
            .values(
                status=JobStatus.DEAD.value,
                finished_at=now,
                updated_at=now,
                last_error=func.coalesce(J.last_error + " / ", "")
                + "the worker running the last attempt was lost (its lease ran out)",
            )
            .returning(J.id, J.kind)
        )
        for job in buried:
            JOBS.labels(job.kind, "dead").inc()
            log.error(
                "job %s (%s) is dead: its worker was lost on the last attempt", job.id, job.kind
            )

    async def execute(self, job: Job) -> None:
        tenant = str(job.tenant_id) if job.tenant_id is not None else None
        with logs.log_context(job_id=str(job.id), job_kind=job.kind, tenant_id=tenant):
            await self._execute(job)

    async def _execute(self, job: Job) -> None:
        handler = self.jobs.get(job.kind)
        try:
            if handler is None:
                raise UnknownJobKind(f"no handler for job kind {job.kind!r}")
            # A job still running when its lease ends would be run again by another worker
            # while this one goes on; it is cut off instead and retried.
            with (
                tracing.job_span(job.kind, job.id, job.attempt, job.tenant_id, job.trace_context),
                JOB_RUN.labels(job.kind).time(),
            ):
                await asyncio.wait_for(handler(job, self.context), self.lease.total_seconds())
        except Exception as exc:
            await self._failed(job, exc)
        else:
            await self._done(job)

    async def _done(self, job: Job) -> None:
        # Done but not recorded (the batch failed): the lease runs out and the job runs again,
        # which job handlers allow for (at least once).
        if await self._completions.record(job):
            JOBS.labels(job.kind, "done").inc()
            if job.due_at is not None:
                waited = (utcnow() - job.due_at).total_seconds()
                JOB_LATENCY.labels(job.kind).observe(max(waited, 0.0))

    async def _failed(self, job: Job, error: Exception) -> None:
        now = utcnow()
        dead = job.attempt >= self.settings.worker_max_attempts
        message = _describe(error)[:_ERROR_LIMIT]
        values = {"last_error": message, "updated_at": now}
        if dead:
            values |= {"status": JobStatus.DEAD.value, "finished_at": now}
        else:
            values["run_after"] = now + self.backoff(job.attempt)
        try:
            async with self.db.autocommit() as connection:
                await connection.execute(
                    update(J).where(J.id == job.id, J.attempts == job.attempt).values(**values)
                )
        except Exception as exc:
            log.warning("job %s failed and was not recorded: %s", job.id, _describe(exc))
            return
        outcome = "dead" if dead else "retry"
        JOBS.labels(job.kind, outcome).inc()
        level = logging.ERROR if dead else logging.WARNING
        log.log(
            level,
            "job %s (%s) attempt %d failed, %s: %s",
            job.id,
            job.kind,
            job.attempt,
            outcome,
            message,
        )

    def backoff(self, attempt: int) -> timedelta:
        """The wait before retry `attempt + 1`: doubling, capped, jittered.

        The jitter (half to all of the step) keeps jobs that failed together, say while the
        receiver was down, from all coming back at the same instant.
        """
        step = min(
            self.settings.worker_backoff_seconds * 2 ** (attempt - 1),
            self.settings.worker_backoff_max_seconds,
        )
        return timedelta(seconds=step * random.uniform(0.5, 1.0))  # noqa: S311 (not a secret)

    # -- housekeeping ------------------------------------------------------------------

    async def maintain(self) -> None:
        """Drop expired idempotency keys and long-finished jobs; safe to run anywhere, twice."""
        now = utcnow()
        try:
            async with self.db.autocommit() as connection:
                keys = await idempotency.purge_expired(connection, self.settings, now)
                jobs = await connection.execute(
                    delete(J).where(
                        J.status == JobStatus.DONE.value, J.finished_at < now - DONE_RETENTION
                    )
                )
        except Exception as exc:
            log.warning("maintenance failed: %s", _describe(exc))
            return
        if keys or jobs.rowcount:
            log.info("purged %d idempotency keys and %d finished jobs", keys, jobs.rowcount)


class _Completions:
    """Marks finished jobs done in batches: one UPDATE, and one commit, for every job that
    finished while the previous batch was being written.

    A job alone is written at once; under load, many share a commit instead of each waiting
    for its own (a commit is a WAL flush). A job's `record` returns once its batch is written.
    """

    def __init__(self, db: Database) -> None:
        self._db = db
        self._waiting: list[tuple[Job, asyncio.Future[bool]]] = []
        self._writer: asyncio.Task[None] | None = None

    async def record(self, job: Job) -> bool:
        """Whether the job is now recorded as done."""
        written: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._waiting.append((job, written))
        if self._writer is None or self._writer.done():
            # A context of its own: one write for many jobs' completions belongs to no one
            # job, so neither its lines nor its spans (it has none: it is part of none of
            # their traces) carry the fields of the job that happened to start it.
            self._writer = contextvars.Context().run(self._start_writer)
        return await asyncio.shield(written)

    def _start_writer(self) -> "asyncio.Task[None]":
        with tracing.untraced():
            return asyncio.create_task(self._write(), name="outbox-completions")

    async def _write(self) -> None:
        while self._waiting:
            batch, self._waiting = self._waiting, []
            now = utcnow()
            # The attempt guard, per job: a worker whose lease ran out must not mark done a
            # job that another worker has claimed again since.
            finished = [(job.id, job.attempt) for job, _ in batch]
            try:
                async with self._db.autocommit() as connection:
                    await connection.execute(
                        update(J)
                        .where(tuple_(J.id, J.attempts).in_(finished))
                        .values(
                            status=JobStatus.DONE.value,
                            finished_at=now,
                            updated_at=now,
                            last_error=None,
                        )
                    )
                recorded = True
            except Exception as exc:
                log.warning("%d finished jobs were not marked done: %s", len(batch), _describe(exc))
                recorded = False
            for _, written in batch:
                if not written.done():
                    written.set_result(recorded)


def _describe(error: BaseException) -> str:
    text = str(error)
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


async def _first_of(*events: asyncio.Event, within: float) -> None:
    waiters = [asyncio.create_task(event.wait()) for event in events]
    try:
        await asyncio.wait(waiters, timeout=within, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
