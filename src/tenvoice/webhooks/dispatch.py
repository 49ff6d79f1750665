"""The `webhook.dispatch` job: one dispatcher at a time sends an endpoint's due deliveries.

The delivery rows are the queue (fanout.py); a dispatch job only says "endpoint X has
something due". The dispatcher that runs one takes the endpoint's lease, so that first
attempts go out strictly one after another in event order whichever worker runs them, and
before each read marks done every dispatch job of the endpoint that nobody has claimed yet.
Retries run beside the first attempts (a few at a time) and never hold them back. Each
batch's outcomes are written in one transaction, which also renews the lease, reads the next
batch and, when there is none, gives the endpoint back: a run that sends one delivery costs
two transactions.

A worker killed mid-run leaves its leases to run out. Its job comes back when the job's lease
ends; if the endpoint's (renewed with every batch) has not ended yet, that run queues a
wake-up for when it does, and the next run takes the endpoint. Deliveries sent but not yet
recorded are sent again, in the same order: at least once, and receivers dedupe on
`webhook-id`.
"""

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import and_, func, literal_column, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from tenvoice.config import Settings, require_secrets_key
from tenvoice.events.models import Event
from tenvoice.events.queries import linked_data
from tenvoice.invoices.links import HostedLinks, LinkTokens
from tenvoice.platform import tracing
from tenvoice.platform.db import utcnow
from tenvoice.platform.ids import uuid7
from tenvoice.platform.outbox import Job, JobStatus, OutboxJob
from tenvoice.platform.uow import UnitOfWork
from tenvoice.platform.worker import JobContext
from tenvoice.webhooks import fanout, retry_policy, sender
from tenvoice.webhooks.metrics import ATTEMPTS, response_class
from tenvoice.webhooks.models import (
    DeliveryStatus,
    EndpointStatus,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
)
from tenvoice.webhooks.secrets import SecretBox

log = logging.getLogger("tenvoice.webhooks")

D = WebhookDelivery
E = WebhookEndpoint
R = TypeVar("R")
A = TypeVar("A")
# How an attempt ended (succeeded, retry, failed) and the status it was answered with.
Verdict = tuple[str, int | None]

# First attempts read (and recorded) per transaction.
BATCH = 100
RETRY_CONCURRENCY = 4
# While only retries are in flight, how often the dispatcher looks for new first attempts.
IDLE_POLL_SECONDS = 0.25
_NO_SYNC = {"synchronize_session": False}
# Written out, not bound: only then may the database use the partial index of pending
# deliveries (ix_webhook_deliveries_due). With a parameter, SQLite walked every delivery
# the endpoint ever had, in event order, to find the pending ones.
_PENDING = D.status == literal_column(f"'{DeliveryStatus.PENDING.value}'")


class LeaseLost(Exception):
    """The endpoint is no longer ours (the lease ran out and another dispatcher took it, or
    the endpoint is gone): stop, and record nothing more."""


@dataclass(frozen=True, slots=True)
class Due:
    id: uuid.UUID
    attempts: int
    message: sender.Message
    event_type: str
    # Of the transaction that recorded the event: each attempt's span joins its trace.
    trace_context: dict[str, str] | None = None


@dataclass(frozen=True, slots=True)
class Sent:
    delivery: Due
    outcome: sender.Outcome


@dataclass(frozen=True, slots=True)
class Destination:
    route: sender.Route
    # The current secret, then the previous one while it has not expired.
    secrets: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Batch:
    """What one transaction read for the dispatcher to send next."""

    firsts: list[Due] = field(default_factory=list)
    retries: list[Due] = field(default_factory=list)
    enabled: bool = True
    # The endpoint was given back in the same transaction: the run is over.
    released: bool = False

    @property
    def idle(self) -> bool:
        return not self.firsts and not self.retries


@dataclass(frozen=True, slots=True)
class Recording:
    sent: list[Sent]
    read_next: bool
    in_flight: frozenset[uuid.UUID]


async def dispatch(job: Job, context: JobContext) -> None:
    if job.tenant_id is None:
        raise ValueError("a webhook dispatch job must name its tenant")
    await Dispatcher(context, job.tenant_id, uuid.UUID(job.payload["endpointId"])).run()


class Dispatcher:
    def __init__(self, context: JobContext, tenant_id: uuid.UUID, endpoint_id: uuid.UUID) -> None:
        self.context = context
        self.tenant_id = tenant_id
        self.endpoint_id = endpoint_id
        self.me = uuid7()
        settings = context.settings
        self.lease = timedelta(seconds=settings.worker_lease_seconds)
        self.schedule = settings.webhook_retry_schedule
        self.box = SecretBox(require_secrets_key(settings.secrets_key))
        self._loop = asyncio.get_running_loop()
        # The worker cuts a job off when its lease ends; a third of it leaves room for the
        # attempts in flight (15 s at most each) and the last write.
        self._deadline = self._loop.time() + settings.worker_lease_seconds / 3

    def out_of_time(self) -> bool:
        return self._loop.time() >= self._deadline

    async def run(self) -> None:
        claimed = await self._transaction(self._claim, None)
        if claimed is None:
            return  # nothing due, disabled, or another dispatcher has it
        destination, batch = claimed
        try:
            await self._deliver(destination, batch)
        except LeaseLost:
            log.warning("endpoint %s: lease lost mid-run, stopping", self.endpoint_id)

    # -- sending -------------------------------------------------------------------------

    async def _deliver(self, destination: Destination, batch: Batch) -> None:
        in_flight: dict[uuid.UUID, asyncio.Task[Sent]] = {}
        try:
            while True:
                stopping = self.out_of_time() or not batch.enabled
                if not stopping:
                    for due in batch.retries:
                        if len(in_flight) < RETRY_CONCURRENCY and due.id not in in_flight:
                            in_flight[due.id] = asyncio.create_task(self._send(destination, due))
                sent: list[Sent] = []
                if batch.firsts and not stopping:
                    sent = await self._in_order(destination, batch.firsts)
                elif in_flight:
                    await asyncio.wait(
                        in_flight.values(),
                        timeout=None if stopping else IDLE_POLL_SECONDS,
                        return_when=asyncio.FIRST_COMPLETED,
                    )
                # With nothing sent and nothing in flight, the write below finds the next
                # batch or, if there is none, gives the endpoint back.
                sent += _finished(in_flight)
                recording = Recording(sent, read_next=not stopping, in_flight=frozenset(in_flight))
                batch, verdicts = await self._transaction(self._record, recording)
                for verdict, status in verdicts:  # counted once written
                    ATTEMPTS.labels(verdict, response_class(status)).inc()
                if batch.released:
                    return
        finally:
            for task in in_flight.values():
                task.cancel()

    async def _in_order(self, destination: Destination, firsts: list[Due]) -> list[Sent]:
        """First attempts, one after another: the next starts when the previous has ended."""
        sent: list[Sent] = []
        for due in firsts:
            if self.out_of_time():
                break
            sent.append(await self._send(destination, due))
            if sent[-1].outcome.status == retry_policy.GONE:
                break  # the endpoint is about to be disabled
        return sent

    async def _send(self, destination: Destination, due: Due) -> Sent:
        with tracing.delivery_span(
            due.trace_context,
            endpoint_id=self.endpoint_id,
            event_type=due.event_type,
            delivery_id=due.id,
            tenant_id=self.tenant_id,
        ) as span:
            outcome = await sender.send(
                self.context.webhook_pools, destination.route, due.message, destination.secrets
            )
            tracing.delivery_outcome(span, outcome.status, outcome.error)
        return Sent(due, outcome)

    # -- transactions --------------------------------------------------------------------

    async def _transaction(self, handler: Callable[[UnitOfWork, A], Awaitable[R]], arg: A) -> R:
        async with self.context.unit_of_work(self.tenant_id) as uow:
            return await uow.run(handler, arg)

    async def _claim(self, uow: UnitOfWork, _: None) -> tuple[Destination, Batch] | None:
        # A locking read: a dispatcher giving the endpoint back holds its row until it
        # commits, and this waits for it and then sees it free. A plain conditional UPDATE
        # would judge the lease by the version before the release, find it taken, and end,
        # though the release read no delivery committed after its own reads: those would
        # then have no dispatcher at all.
        endpoint = (
            await uow.session.execute(
                select(
                    E.status,
                    E.dispatch_lease_until,
                    E.wakeup_at,
                    E.url,
                    E.secret,
                    E.previous_secret,
                    E.previous_secret_expires_at,
                )
                .where(E.id == self.endpoint_id)
                .with_for_update(key_share=True)
            )
        ).first()
        if endpoint is None or endpoint.status != EndpointStatus.ENABLED.value:
            return None  # gone, or disabled: its deliveries wait for it to be enabled again
        now = utcnow()
        lease_until = endpoint.dispatch_lease_until
        if lease_until is not None and lease_until > now:
            await self._come_back_later(uow, now, lease_until, endpoint.wakeup_at)
            return None
        await uow.session.execute(
            update(E)
            .where(E.id == self.endpoint_id)
            .values(dispatch_owner=self.me, dispatch_lease_until=now + self.lease)
            .execution_options(**_NO_SYNC)
        )
        batch = await self._read(uow.session, now, frozenset(), enabled=True)
        if batch.idle:
            await self._release(uow, now)
            return None
        secrets = [self.box.open(endpoint.secret, self.tenant_id, self.endpoint_id)]
        expires = endpoint.previous_secret_expires_at
        if endpoint.previous_secret and expires is not None and expires > now:
            secrets.append(
                self.box.open(endpoint.previous_secret, self.tenant_id, self.endpoint_id)
            )
        route = sender.Route(
            endpoint.url,
            allow_private=self.context.settings.webhook_allow_private,
            resolver=self.context.resolver,
        )
        return Destination(route, tuple(secrets)), batch

    async def _come_back_later(
        self, uow: UnitOfWork, now: datetime, lease_until: datetime, wakeup_at: datetime | None
    ) -> None:
        """The endpoint is leased to another dispatcher. A live one sends our deliveries too
        (its last read comes after they committed); one whose worker died never will, and
        nothing else is queued to run them when its lease runs out (it can end after this
        job's own lease, which is what brought this job back). So: a wake-up for then,
        unless one is queued before it."""
        if not _wake_needed(wakeup_at, lease_until, now):
            return
        fanout.wake(uow.session, self.tenant_id, self.endpoint_id, at=lease_until)
        await uow.session.execute(
            update(E)
            .where(E.id == self.endpoint_id)
            .values(wakeup_at=lease_until)
            .execution_options(**_NO_SYNC)
        )

    async def _record(self, uow: UnitOfWork, recording: Recording) -> tuple[Batch, list[Verdict]]:
        now = utcnow()
        renewed = await uow.session.execute(
            update(E)
            .where(E.id == self.endpoint_id, E.dispatch_owner == self.me)
            .values(dispatch_lease_until=now + self.lease)
            .returning(E.id)
            .execution_options(**_NO_SYNC)
        )
        if renewed.first() is None:
            raise LeaseLost
        endpoint = await uow.session.scalar(select(E).where(E.id == self.endpoint_id))
        assert endpoint is not None  # the renewal just found it
        uow.track(endpoint)
        verdicts = await self._apply(uow, endpoint, recording.sent)
        if recording.read_next and endpoint.enabled:
            batch = await self._read(uow.session, now, recording.in_flight, enabled=True)
        else:
            batch = Batch(enabled=endpoint.enabled)
        if batch.idle and not recording.in_flight:
            await self._release(uow, now)
            batch = replace(batch, released=True)
        return batch, verdicts

    async def _apply(
        self, uow: UnitOfWork, endpoint: WebhookEndpoint, sent: list[Sent]
    ) -> list[Verdict]:
        if not sent:
            return []
        ids = [each.delivery.id for each in sent]
        deliveries = {d.id: d for d in await uow.session.scalars(select(D).where(D.id.in_(ids)))}
        verdicts: list[Verdict] = []
        for each in sorted(sent, key=lambda s: s.outcome.at):
            delivery = deliveries.get(each.delivery.id)
            if delivery is None:
                continue  # deleted with its endpoint meanwhile
            outcome = each.outcome
            verdict = retry_policy.apply(delivery, endpoint, outcome, self.schedule)
            uow.session.add(
                WebhookAttempt(
                    delivery_id=delivery.id,
                    number=delivery.attempts,
                    at=outcome.at,
                    response_status=outcome.status,
                    duration_ms=outcome.duration_ms,
                    error=outcome.error,
                    response_body=outcome.body,
                )
            )
            if verdict.disable_reason is not None and endpoint.enabled:
                log.warning("endpoint %s disabled: %s", endpoint.id, verdict.disable_reason)
                endpoint.disable(verdict.disable_reason, outcome.at)
            verdicts.append((verdict.outcome, outcome.status))
        await uow.session.flush()
        return verdicts

    async def _release(self, uow: UnitOfWork, now: datetime) -> None:
        """Give the endpoint back and queue the wake-up its next retry needs.

        Nothing is missed by ending here. A change that commits a delivery before this
        transaction's reads is seen by them (due now: a fresh job carries on; due later: the
        wake-up below). One that commits after them queues its dispatch job after them too,
        and that job's run waits on the endpoint row this transaction has locked, then finds
        it free."""
        released = (
            await uow.session.execute(
                update(E)
                .where(E.id == self.endpoint_id, E.dispatch_owner == self.me)
                .values(dispatch_owner=None, dispatch_lease_until=None)
                .returning(E.status, E.wakeup_at)
                .execution_options(**_NO_SYNC)
            )
        ).first()
        if released is None or released.status != EndpointStatus.ENABLED.value:
            return  # a disabled endpoint's deliveries wait for it to be enabled again
        earliest = await uow.session.scalar(
            select(func.min(D.next_attempt_at)).where(D.endpoint_id == self.endpoint_id, _PENDING)
        )
        if earliest is None:
            return
        if earliest <= now:
            # Stopped for time (or out of room for retries) with work left: a fresh job
            # carries on.
            fanout.wake(uow.session, self.tenant_id, self.endpoint_id)
            return
        if _wake_needed(released.wakeup_at, earliest, now):
            fanout.wake(uow.session, self.tenant_id, self.endpoint_id, at=earliest)
            await uow.session.execute(
                update(E)
                .where(E.id == self.endpoint_id)
                .values(wakeup_at=earliest)
                .execution_options(**_NO_SYNC)
            )

    # -- reading -------------------------------------------------------------------------

    async def _read(
        self, session: AsyncSession, now: datetime, in_flight: frozenset[uuid.UUID], enabled: bool
    ) -> Batch:
        """The next batch, after marking done the endpoint's dispatch jobs nobody has claimed:
        every delivery they stand for committed with them, so the reads below see it, and
        running them would only find the endpoint taken."""
        await session.execute(
            update(OutboxJob)
            .where(
                OutboxJob.dedupe_key == fanout.dispatch_key(self.endpoint_id),
                # Written out, for ix_outbox_jobs_unclaimed_dedupe (as _PENDING).
                OutboxJob.status == literal_column(f"'{JobStatus.PENDING.value}'"),
                OutboxJob.attempts == literal_column("0"),
                # A wake-up queued for a later retry stays: it is that retry's only trigger.
                OutboxJob.run_after <= now,
            )
            .values(status=JobStatus.DONE.value, finished_at=now, updated_at=now)
            .execution_options(**_NO_SYNC)
        )
        due = (
            select(
                D.id,
                D.attempts,
                D.trace_context,
                D.event_id,
                Event.tenant_id,
                Event.entity_type,
                Event.entity_id,
                Event.event_type,
                Event.occurred_at,
                Event.data,
            )
            .join(Event, and_(Event.tenant_id == D.tenant_id, Event.id == D.event_id))
            .where(
                D.endpoint_id == self.endpoint_id,
                _PENDING,
                D.next_attempt_at <= now,
            )
            # uuid7 ids: event order.
            .order_by(D.event_id)
        )
        firsts = await session.execute(due.where(D.attempts == 0).limit(BATCH))
        retries: list[Any] = []
        room = RETRY_CONCURRENCY - len(in_flight)
        if room > 0:
            rows = await session.execute(
                due.where(D.attempts > 0, D.id.not_in(in_flight)).limit(room)
            )
            retries = list(rows)
        links = _links(self.context.settings)
        return Batch(
            [_due_of(row, links) for row in firsts],
            [_due_of(row, links) for row in retries],
            enabled,
        )


def _links(settings: Settings) -> HostedLinks | None:
    """Public invoice links for the snapshots webhooks carry. A worker has no request to
    take the address from, so without TENVOICE_PUBLIC_BASE_URL they stay null."""
    base, key = settings.public_base_url, settings.secrets_key
    if not base or not key:
        return None
    return HostedLinks(base.rstrip("/"), LinkTokens(key))


def _due_of(row: Any, links: HostedLinks | None) -> Due:
    data = linked_data(row, links)
    sent = sender.message(row.event_id, row.event_type, row.occurred_at, data)
    return Due(row.id, row.attempts, sent, row.event_type, row.trace_context)


def _finished(in_flight: dict[uuid.UUID, asyncio.Task[Sent]]) -> list[Sent]:
    done = [delivery_id for delivery_id, task in in_flight.items() if task.done()]
    return [in_flight.pop(delivery_id).result() for delivery_id in done]


def _wake_needed(wakeup_at: datetime | None, earliest: datetime, now: datetime) -> bool:
    """No wake-up is queued for the earliest retry: none at all, one that has already run,
    or one for later than it."""
    return wakeup_at is None or wakeup_at < now or wakeup_at > earliest
