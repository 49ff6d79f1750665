"""Acceptance: a `tenvoice worker` killed with SIGKILL mid-delivery, restarted: every event is
delivered, in order, none lost and none marked failed.

The worker runs as a real process and delivers to a receiver that takes a moment over each
delivery, so that it can be killed while one is in flight. Its endpoint lease and its job's
lease run out together; the restarted worker takes the endpoint over and sends again what
was not recorded, from the first such delivery on, in the same order.
"""

import asyncio
import os
import signal
import uuid
from pathlib import Path

from tenvoice.config import Settings
from tenvoice.platform.db import Database
from tests.conftest import ADMIN_KEY, SECRETS_KEY, Backend, TenantHandle
from tests.live import eventually
from tests.webhooks.deliveries import Endpoint, add_endpoint, deliveries, endpoint_row, publish
from tests.webhooks.receivers import Received, Receiver, Reply, serving, verified

TENVOICE = Path(__file__).resolve().parents[2] / ".venv" / "bin" / "tenvoice"
EVENTS = 30
SLOW = 0.15
LEASE_SECONDS = 2


async def start_worker(backend: Backend) -> asyncio.subprocess.Process:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TENVOICE_")}
    env |= {
        "TENVOICE_DATABASE_URL": backend.url,
        "TENVOICE_ADMIN_KEY": ADMIN_KEY,
        "TENVOICE_SECRETS_KEY": SECRETS_KEY,
        "TENVOICE_WEBHOOK_ALLOW_PRIVATE": "true",
        "TENVOICE_WEBHOOK_RETRY_SCHEDULE": "0.05,0.1,0.1,0.1,0.1,0.1,0.1",
        "TENVOICE_WORKER_LEASE_SECONDS": str(LEASE_SECONDS),
        "TENVOICE_WORKER_POLL_SECONDS": "0.05",
        "TENVOICE_WORKER_CONCURRENCY": "4",
    }
    return await asyncio.create_subprocess_exec(
        TENVOICE,
        "worker",
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )


async def all_succeeded(db: Database, endpoint: Endpoint) -> bool:
    rows = await deliveries(db, endpoint)
    return len(rows) == EVENTS and all(row.status == "succeeded" for row in rows)


async def test_a_worker_killed_mid_delivery_and_restarted_delivers_every_event_in_order(
    backend: Backend, db: Database, settings: Settings, tenant_a: TenantHandle
) -> None:
    in_flight = asyncio.Event()

    def slow(request: Received) -> Reply:
        if len(receiver.received) == 4:
            in_flight.set()  # killed during this one's answer
        return Reply(200, delay=SLOW)

    workers: list[asyncio.subprocess.Process] = []
    async with serving(Receiver(slow)) as receiver:
        endpoint = await add_endpoint(db, tenant_a.id, receiver.url())
        events: list[uuid.UUID] = []
        for _ in range(3):
            events += await publish(db, tenant_a.id, [endpoint], count=EVENTS // 3)
        try:
            first = await start_worker(backend)
            workers.append(first)
            await asyncio.wait_for(in_flight.wait(), 30)
            first.send_signal(signal.SIGKILL)
            assert await asyncio.wait_for(first.wait(), 10) == -signal.SIGKILL
            killed_during = receiver.received[-1].webhook_id

            # Killed mid-run: the endpoint is still leased to it, and the delivery in flight
            # (at least) is not recorded.
            assert (await endpoint_row(db, endpoint)).dispatch_owner is not None
            by_event = {str(row.event_id): row for row in await deliveries(db, endpoint)}
            assert by_event[killed_during].status == "pending"
            assert by_event[killed_during].attempts == 0

            second = await start_worker(backend)
            workers.append(second)
            await eventually(lambda: all_succeeded(db, endpoint), timeout=60, interval=0.1)
            second.send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(second.wait(), 20) == 0
        finally:
            for worker in workers:
                if worker.returncode is None:
                    worker.kill()
                    await worker.wait()

    sent = [str(event) for event in events]
    got = receiver.ids()
    # Deduplicated by webhook-id, every event arrived, first arrivals in event order...
    assert receiver.first_seen() == sent
    # ...and the restarted worker sent again, in order, from the first unrecorded delivery:
    # what arrived is the events up to the kill, then the events from that delivery on.
    assert got.count(killed_during) == 2
    killed_at = got.index(killed_during) + 1
    restart = sent.index(got[killed_at]) if killed_at < len(got) else len(sent)
    assert got == sent[:killed_at] + sent[restart:], got
    assert restart <= sent.index(killed_during)
    for request in receiver.received:
        verified(endpoint.secret, request)
    rows = await deliveries(db, endpoint)
    assert {(row.status, row.attempts) for row in rows} == {("succeeded", 1)}
    endpoint_now = await endpoint_row(db, endpoint)
    assert (endpoint_now.dispatch_owner, endpoint_now.failed_attempts) == (None, 0)
