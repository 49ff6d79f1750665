"""Outbound webhooks reach real receivers (uvicorn on loopback), signed as Standard Webhooks
(checked by the `standardwebhooks` package), in event order per endpoint, whichever of
several workers runs the dispatch."""

import asyncio
import random
import uuid
from datetime import datetime, timedelta

import orjson
import pytest
from sqlalchemy import select, update

from tenvoice.config import Settings
from tenvoice.platform.db import Database, utcnow
from tenvoice.platform.outbox import JobStatus, OutboxJob
from tenvoice.webhooks import fanout
from tenvoice.webhooks.models import WebhookEndpoint
from tenvoice.webhooks.secrets import new_secret
from tests.conftest import TenantHandle
from tests.live import eventually
from tests.webhooks.deliveries import (
    Endpoint,
    add_endpoint,
    attempts,
    deliveries,
    delivery_settings,
    delivery_worker,
    endpoint_row,
    publish,
    running,
)
from tests.webhooks.receivers import Received, Receiver, Reply, serving, verified


async def test_events_arrive_in_order_signed_and_the_same_for_every_endpoint(
    db: Database, settings: Settings, tenant_a: TenantHandle
) -> None:
    async with serving(Receiver()) as one, serving(Receiver()) as two:
        first = await add_endpoint(db, tenant_a.id, one.url())
        second = await add_endpoint(db, tenant_a.id, two.url("/other?x=1"))
        events: list[uuid.UUID] = []
        for _ in range(5):  # five changes, five events each
            events += await publish(db, tenant_a.id, [first, second], count=5)
        async with delivery_worker(db, delivery_settings(settings)) as worker:
            await worker.drain()

    assert one.ids() == two.ids() == [str(event) for event in events]
    assert {r.path for r in one.received} == {"/hooks"}
    assert {(r.path, r.query) for r in two.received} == {("/other", "x=1")}
    for mine, theirs in zip(one.received, two.received, strict=True):
        # The body is the same bytes for every endpoint (and every attempt).
        assert mine.body == theirs.body
        payload = verified(first.secret, mine)
        assert payload == verified(second.secret, theirs)
        assert payload == orjson.loads(mine.body)
        assert set(payload) == {"id", "type", "timestamp", "data"}
        assert payload["id"] == mine.webhook_id
        assert payload["type"] == "invoice.paid"
        assert payload["timestamp"].endswith("Z")
        assert payload["data"]["object"]["name"] == "Zoë Ωmega"
        assert mine.headers["content-type"] == "application/json"
        assert mine.headers["user-agent"] == "tenvoice-webhooks/1"
        assert len(mine.headers["webhook-signature"].split()) == 1
    for endpoint in (first, second):
        rows = await deliveries(db, endpoint)
        assert [row.event_id for row in rows] == events
        assert {(row.status, row.attempts, row.last_response_status) for row in rows} == {
            ("succeeded", 1, 204)
        }
        assert all(row.next_attempt_at is None for row in rows)
        (attempt,) = await attempts(db, endpoint, rows[0].id)
        assert (attempt.number, attempt.response_status, attempt.error) == (1, 204, None)
        assert attempt.duration_ms >= 0


async def test_a_receiver_failing_30_percent_of_the_time_still_gets_every_event_in_order(
    db: Database, settings: Settings, tenant_a: TenantHandle
) -> None:
    chance = random.Random(30)
    failures: dict[str, int] = {}

    def flaky(request: Received) -> Reply:
        # 30% of requests fail, at random (seeded); never one delivery more than 3 times, so
        # that none runs out of its 8 attempts.
        if failures.get(request.webhook_id, 0) < 3 and chance.random() < 0.3:
            failures[request.webhook_id] = failures.get(request.webhook_id, 0) + 1
            return Reply(chance.choice([500, 502, 503, 404]), body=b"not now")
        return Reply(200)

    async with serving(Receiver(flaky)) as receiver:
        endpoint = await add_endpoint(db, tenant_a.id, receiver.url())
        async with delivery_worker(db, delivery_settings(settings)) as worker, running(worker):
            events: list[uuid.UUID] = []
            for _ in range(8):
                events += await publish(db, tenant_a.id, [endpoint], count=5)

            async def all_succeeded() -> bool:
                rows = await deliveries(db, endpoint)
                return len(rows) == 40 and all(row.status == "succeeded" for row in rows)

            await eventually(all_succeeded, timeout=30)

    assert sum(failures.values()) >= 8, failures
    # Deduplicated by webhook-id, the receiver saw each event, first attempts in event order.
    assert receiver.first_seen() == [str(event) for event in events]
    for request in receiver.received:
        verified(endpoint.secret, request)
    rows = await deliveries(db, endpoint)
    for row in rows:
        tries = await attempts(db, endpoint, row.id)
        assert len(tries) == row.attempts == 1 + failures.get(str(row.event_id), 0)
        assert [t.response_status < 300 for t in tries] == [False] * (row.attempts - 1) + [True]


async def test_during_a_rotation_each_live_secret_signs_and_verifies_on_its_own(
    db: Database, settings: Settings, tenant_a: TenantHandle
) -> None:
    old = new_secret()
    async with serving(Receiver()) as receiver:
        rotating = await add_endpoint(
            db,
            tenant_a.id,
            receiver.url("/rotating"),
            previous_secret=old,
            previous_expires_at=utcnow() + timedelta(hours=1),
        )
        expired = await add_endpoint(
            db,
            tenant_a.id,
            receiver.url("/expired"),
            previous_secret=new_secret(),
            previous_expires_at=utcnow() - timedelta(seconds=1),
        )
        await publish(db, tenant_a.id, [rotating, expired])
        async with delivery_worker(db, delivery_settings(settings)) as worker:
            await worker.drain()

    by_path = {request.path: request for request in receiver.received}
    request = by_path["/rotating"]
    signatures = request.headers["webhook-signature"].split(" ")
    assert len(signatures) == 2
    assert all(s.startswith("v1,") for s in signatures)
    for secret, alone in zip((rotating.secret, old), signatures, strict=True):
        headers = {**request.headers, "webhook-signature": alone}
        verified(secret, Received(request.path, "", headers, request.body, request.at))
    # The old secret has expired on the other endpoint: one signature, the current one.
    request = by_path["/expired"]
    assert len(request.headers["webhook-signature"].split(" ")) == 1
    verified(expired.secret, request)


async def test_a_dispatcher_holding_the_endpoint_keeps_it_and_absorbs_the_waiting_jobs(
    db: Database, settings: Settings, tenant_a: TenantHandle
) -> None:
    async with serving(Receiver()) as receiver:
        endpoint = await add_endpoint(db, tenant_a.id, receiver.url())
        # Leased to a dispatcher that will never record anything (its worker died).
        held_until = utcnow() + timedelta(seconds=1)
        async with db.write(endpoint.tenant_id) as session:
            await session.execute(
                update(WebhookEndpoint)
                .where(WebhookEndpoint.id == endpoint.id)
                .values(dispatch_owner=uuid.uuid4(), dispatch_lease_until=held_until)
            )
            await session.commit()
        await publish(db, tenant_a.id, [endpoint], count=2)
        await publish(db, tenant_a.id, [endpoint])
        one_at_a_time = delivery_settings(settings, worker_concurrency=1)
        async with delivery_worker(db, one_at_a_time) as worker:
            # Both jobs ran, and each found the endpoint taken: nothing was sent, and one
            # wake-up waits for the lease to run out (the first run queued it, the second
            # found it queued).
            assert await worker.drain() == 2
            assert receiver.received == []
            waiting = [job for job in await dispatch_jobs(db, endpoint) if job[0] == "pending"]
            assert waiting == [(JobStatus.PENDING, 0, held_until)]
            await asyncio.sleep((held_until - utcnow()).total_seconds() + 0.05)
            await publish(db, tenant_a.id, [endpoint])
            # Three more queued meanwhile: the first run takes the endpoint over and absorbs
            # the others, unclaimed, the wake-up among them.
            for _ in range(3):
                async with db.write(endpoint.tenant_id) as session:
                    fanout.wake(session, endpoint.tenant_id, endpoint.id)
                    await session.commit()
            assert await worker.drain() == 1
    assert len(receiver.received) == 4
    jobs = [(status, attempts) for status, attempts, _ in await dispatch_jobs(db, endpoint)]
    assert sorted(jobs) == [(JobStatus.DONE, 0)] * 4 + [(JobStatus.DONE, 1)] * 3
    assert {row.status for row in await deliveries(db, endpoint)} == {"succeeded"}
    assert (await endpoint_row(db, endpoint)).dispatch_owner is None


@pytest.mark.backend("postgresql")
async def test_a_job_that_meets_the_endpoint_being_given_back_waits_for_it_and_sends(
    db: Database, settings: Settings, tenant_a: TenantHandle
) -> None:
    async with serving(Receiver()) as receiver:
        endpoint = await add_endpoint(db, tenant_a.id, receiver.url())
        async with db.write(endpoint.tenant_id) as session:
            await session.execute(
                update(WebhookEndpoint)
                .where(WebhookEndpoint.id == endpoint.id)
                .values(
                    dispatch_owner=uuid.uuid4(),
                    dispatch_lease_until=utcnow() + timedelta(minutes=5),
                )
            )
            await session.commit()
        # Committed after the holder's last read, so the holder never saw it.
        await publish(db, tenant_a.id, [endpoint])
        async with db.write(endpoint.tenant_id) as releasing:
            await releasing.execute(
                update(WebhookEndpoint)
                .where(WebhookEndpoint.id == endpoint.id)
                .values(dispatch_owner=None, dispatch_lease_until=None)
            )
            async with delivery_worker(db, delivery_settings(settings)) as worker:
                drained = asyncio.create_task(worker.drain())
                await asyncio.sleep(0.3)
                # The job's run waits for the release to commit...
                assert not drained.done()
                await releasing.commit()
                # ...then takes the endpoint and sends, rather than finding it taken.
                assert await asyncio.wait_for(drained, 10) == 1
    assert len(receiver.received) == 1
    assert {row.status for row in await deliveries(db, endpoint)} == {"succeeded"}
    waiting = [job for job in await dispatch_jobs(db, endpoint) if job[0] == "pending"]
    assert waiting == []


async def dispatch_jobs(db: Database, endpoint: Endpoint) -> list[tuple[str, int, datetime]]:
    async with db.lookup() as connection:
        rows = await connection.execute(
            select(OutboxJob.status, OutboxJob.attempts, OutboxJob.run_after).where(
                OutboxJob.dedupe_key == fanout.dispatch_key(endpoint.id)
            )
        )
        return [(row.status, row.attempts, row.run_after) for row in rows]


async def test_two_workers_with_events_arriving_meanwhile_send_each_once_in_order(
    db: Database, settings: Settings, tenant_a: TenantHandle
) -> None:
    async with serving(Receiver(lambda _: Reply(200, delay=0.005))) as receiver:
        endpoints = [await add_endpoint(db, tenant_a.id, receiver.url(f"/{n}")) for n in range(2)]
        fast = delivery_settings(settings, worker_poll_seconds=0.005)
        events: list[uuid.UUID] = []
        async with (
            delivery_worker(db, fast) as one,
            delivery_worker(db, fast) as two,
            running(one),
            running(two),
        ):
            # Each change commits its deliveries and dispatch jobs while a dispatcher may be
            # holding the endpoint: none of them may be left behind.
            for n in range(40):
                events += await publish(db, tenant_a.id, endpoints, count=1 + n % 3)

            async def settled() -> bool:
                rows = [row for e in endpoints for row in await deliveries(db, e)]
                return all(row.status == "succeeded" for row in rows)

            await eventually(settled, timeout=30)

    for n, endpoint in enumerate(endpoints):
        got = [r.webhook_id for r in receiver.received if r.path == f"/{n}"]
        assert got == [str(event) for event in events]
        rows = await deliveries(db, endpoint)
        assert {row.attempts for row in rows} == {1}


async def test_a_hanging_retry_does_not_hold_back_the_first_attempts_after_it(
    db: Database, settings: Settings, tenant_a: TenantHandle
) -> None:
    hang = 2.0
    tries: dict[str, int] = {}

    def answer(request: Received) -> Reply:
        tries[request.webhook_id] = tries.get(request.webhook_id, 0) + 1
        if request.webhook_id == str(stuck):
            # Fails at once, then takes its time over the retry.
            return Reply(500) if tries[str(stuck)] == 1 else Reply(200, delay=hang)
        return Reply(200)

    async with serving(Receiver(answer)) as receiver:
        endpoint = await add_endpoint(db, tenant_a.id, receiver.url())
        async with delivery_worker(db, delivery_settings(settings)) as worker, running(worker):
            (stuck,) = await publish(db, tenant_a.id, [endpoint])

            async def retrying() -> bool:
                return tries.get(str(stuck), 0) == 2

            await eventually(retrying, timeout=10)
            later = await publish(db, tenant_a.id, [endpoint], count=3)

            async def all_succeeded() -> bool:
                rows = await deliveries(db, endpoint)
                return all(row.status == "succeeded" for row in rows)

            await eventually(all_succeeded, timeout=20)

    retry = receiver.received[1]
    assert retry.webhook_id == str(stuck)
    after = receiver.received[2:]
    assert [r.webhook_id for r in after] == [str(event) for event in later]
    # All three went out, in order, while the retry was still waiting for its answer.
    assert all(r.at < retry.at + hang for r in after), [r.at - retry.at for r in after]
