"""W7: events fanned out to three endpoints of one tenant, delivered by two `tenvoice worker`
processes (the `webhook.dispatch` job) to a local receiver that takes everything.

The events, their deliveries and one dispatch job per endpoint are written as the event log
writes them (`bench.fanout_seed`), due at 'infinity'; the workers start and go idle; one
transaction makes everything due and the clock starts. The run ends when no delivery is
pending any more, read from the database. Times come from the attempts the dispatcher
recorded (when each answer arrived), not from the workers' logs; loss and order from what
the receiver took, per endpoint.
"""

import asyncio
import time
import uuid
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime

import asyncpg

from bench import fanout_seed
from bench.context import Bench, Seeded
from bench.drain import receiver_stats, start_receiver, start_workers
from bench.fanout_seed import Endpoint
from bench.procs import Memory, RssSampler, Service, cpu_seconds, free_port
from tenvoice.webhooks.fanout import DISPATCH, dispatch_key

ENDPOINTS = 3


@dataclass
class FanoutResult:
    events: int
    deliveries: int
    event_bytes: int = 0  # the average event's `data`, as stored
    succeeded: int = 0
    failed: int = 0
    pending: int = 0
    drain_s: float = 0.0  # from everything due to the last delivery's answer
    p99_s: float = 0.0  # to the 99th percentile delivery's answer
    attempts: int = 0
    dispatch_runs: int = 0  # dispatch jobs that ran (the rest were absorbed by a running one)
    accepted: int = 0  # distinct (path, webhook-id) pairs the receiver took
    per_endpoint: dict[str, int] = field(default_factory=dict)
    out_of_order: int = 0
    sampled: int = 0
    verified: int = 0
    other_due_jobs: int = 0
    timed_out: bool = False
    worker_cpu_s: list[float] = field(default_factory=list)
    receiver_cpu_s: float = 0.0
    memory: Memory = field(default_factory=Memory)

    @property
    def deliveries_per_s(self) -> float:
        return self.succeeded / self.drain_s if self.drain_s else 0.0

    @property
    def retries(self) -> int:
        return self.attempts - self.succeeded - self.failed

    @property
    def lost(self) -> int:
        return self.deliveries - self.accepted

    @property
    def nothing_lost(self) -> bool:
        return self.succeeded == self.deliveries and self.accepted == self.deliveries

    @property
    def met(self) -> bool:
        return self.deliveries_per_s >= 1000 and self.nothing_lost and self.out_of_order == 0

    def to_json(self) -> dict[str, object]:
        return {
            **asdict(self),
            "deliveries_per_s": self.deliveries_per_s,
            "retries": self.retries,
            "lost": self.lost,
            "met": self.met,
        }


async def fan_out(bench: Bench, seeded: Seeded) -> FanoutResult:
    events = bench.plan.fanout_events
    result = FanoutResult(events=events, deliveries=events * ENDPOINTS)
    tenant = seeded.manifest.tenants[-1].id
    port = free_port()
    paths = [f"/ep{n}" for n in range(1, ENDPOINTS + 1)]
    endpoints = fanout_seed.new_endpoints([(tenant, f"http://127.0.0.1:{port}{p}") for p in paths])
    connection = await asyncpg.connect(seeded.admin_db_url)
    receiver: Service | None = None
    workers: list[Service] = []
    try:
        secrets = {p: e.secret for p, e in zip(paths, endpoints, strict=True)}
        receiver = await start_receiver(bench, "w7-receiver", 0.0, secrets, port)
        await fanout_seed.insert_endpoints(connection, bench.secrets_key, endpoints)
        data = await fanout_seed.snapshots(connection, tenant)
        ids, jobs = await fanout_seed.queue_events(connection, tenant, endpoints, data, events)
        result.event_bytes = await connection.fetchval(
            "SELECT avg(octet_length(data::text))::int FROM events WHERE tenant_id = $1 "
            "AND id = ANY($2::uuid[])",
            uuid.UUID(tenant),
            ids[:100],
        )
        workers = await start_workers(bench, seeded, "w7")
        await _run(bench, connection, receiver, workers, endpoints, jobs, result)
    finally:
        for worker in workers:
            bench.procs.stop(worker)
        if receiver is not None:
            bench.procs.stop(receiver)
        await connection.close()
    return result


async def _run(
    bench: Bench,
    connection: asyncpg.Connection,
    receiver: Service,
    workers: list[Service],
    endpoints: list[Endpoint],
    jobs: list[str],
    result: FanoutResult,
) -> None:
    cpu_before = [cpu_seconds(w.pid) for w in workers]
    receiver_before = cpu_seconds(receiver.pid)
    with RssSampler([w.pid for w in workers]) as sampler:
        result.other_due_jobs = await connection.fetchval(
            "SELECT count(*) FROM outbox_jobs WHERE status = 'pending' AND run_after <= now()"
        )
        started = datetime.now(UTC)
        await fanout_seed.make_due(connection, endpoints, jobs)
        await _wait_done(connection, receiver, endpoints, result, bench.plan.drain_timeout_s)
    result.worker_cpu_s = [cpu_seconds(w.pid) - b for w, b in zip(workers, cpu_before, strict=True)]
    result.receiver_cpu_s = cpu_seconds(receiver.pid) - receiver_before
    result.memory = sampler.memory
    await _finish(connection, endpoints, result, started)
    stats = await receiver_stats(receiver)
    result.per_endpoint = dict(stats["paths"])
    result.accepted = stats["accepted"]
    result.out_of_order = stats["out_of_order"]
    result.sampled, result.verified = stats["sampled"], stats["verified"]


# The endpoints' deliveries (their tenant leads every index of webhook_deliveries).
_OURS = "tenant_id = $1 AND endpoint_id = ANY($2::uuid[])"


def _ours(endpoints: list[Endpoint]) -> tuple[uuid.UUID, list[str]]:
    return uuid.UUID(endpoints[0].tenant_id), [e.id for e in endpoints]


async def _wait_done(
    connection: asyncpg.Connection,
    receiver: Service,
    endpoints: list[Endpoint],
    result: FanoutResult,
    limit: float,
) -> None:
    """Until no delivery is pending. As in W5, the receiver is polled, and the database only
    when the receiver has them all or every 2 s (for deliveries that failed for good): the
    workers being measured share the machine."""
    deadline = time.monotonic() + limit
    next_check = time.monotonic() + 2.0
    while True:
        accepted = (await receiver_stats(receiver))["accepted"]
        if accepted >= result.deliveries or time.monotonic() >= next_check:
            next_check = time.monotonic() + 2.0
            pending = await connection.fetchval(
                f"SELECT count(*) FROM webhook_deliveries WHERE {_OURS} AND status = 'pending'",
                *_ours(endpoints),
            )
            if pending == 0:
                return
        if time.monotonic() > deadline:
            result.timed_out = True
            return
        await asyncio.sleep(0.05)


async def _finish(
    connection: asyncpg.Connection,
    endpoints: list[Endpoint],
    result: FanoutResult,
    started: datetime,
) -> None:
    row = await connection.fetchrow(
        "SELECT count(*) FILTER (WHERE status = 'succeeded') AS succeeded, "
        "count(*) FILTER (WHERE status = 'failed') AS failed, "
        "count(*) FILTER (WHERE status = 'pending') AS pending, "
        f"coalesce(sum(attempts), 0) AS attempts FROM webhook_deliveries WHERE {_OURS}",
        *_ours(endpoints),
    )
    result.succeeded, result.failed = row["succeeded"], row["failed"]
    result.pending, result.attempts = row["pending"], row["attempts"]
    # When each delivery's answer arrived: its successful attempt's start plus its duration.
    times = await connection.fetchrow(
        "SELECT max(done) AS last, percentile_disc(0.99) WITHIN GROUP (ORDER BY done) AS p99 "
        "FROM (SELECT a.at + a.duration_ms * interval '1 millisecond' AS done "
        "FROM webhook_attempts a JOIN webhook_deliveries d "
        "ON d.tenant_id = a.tenant_id AND d.id = a.delivery_id "
        "WHERE d.tenant_id = $1 AND d.endpoint_id = ANY($2::uuid[]) "
        "AND a.response_status BETWEEN 200 AND 299) answered",
        *_ours(endpoints),
    )
    if result.timed_out or times["last"] is None:
        result.drain_s = (datetime.now(UTC) - started).total_seconds()
    else:
        result.drain_s = (times["last"] - started).total_seconds()
    if times["p99"] is not None:
        result.p99_s = (times["p99"] - started).total_seconds()
    result.dispatch_runs = await connection.fetchval(
        "SELECT count(*) FROM outbox_jobs WHERE kind = $1 AND dedupe_key = ANY($2) "
        "AND attempts > 0",
        DISPATCH,
        [dispatch_key(uuid.UUID(e.id)) for e in endpoints],
    )
