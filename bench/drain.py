"""W5: two `tenvoice worker` processes drain 10,000 gateway.charge jobs into a receiver that
refuses 10% of deliveries.

The jobs are written as the app writes them (`gateway/handlers.py`: kind, payload, tenant)
but due at 'infinity', so the workers start, connect and go idle first; then one UPDATE
makes every job due at once and the clock starts. The drain ends when every job is done
(or dead), read from the database, not from the workers' logs.
"""

import asyncio
import os
import sys
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

import asyncpg
import httpx
import orjson

from bench.context import Bench, Seeded
from bench.manifest import PaymentSeed
from bench.procs import BIN, Memory, RssSampler, Service, free_port, wait_log, wait_ready
from tenvoice.gateway.simulator import CHARGE, DEFAULT_TOKEN
from tenvoice.platform.ids import uuid7
from tenvoice.platform.money import format_minor

WORKERS = 2
FAIL_RATE = 0.1


@dataclass
class DrainResult:
    jobs: int
    done: int = 0
    dead: int = 0
    pending: int = 0
    drain_s: float = 0.0  # from the jobs becoming due to the last one finished
    p99_s: float = 0.0  # to the 99th percentile job finished
    attempts: int = 0
    accepted_ids: int = 0  # distinct webhook ids the receiver took
    accepted_total: int = 0
    refused: int = 0
    other_due_jobs: int = 0  # jobs not ours that were due as the drain began
    timed_out: bool = False
    memory: Memory = field(default_factory=Memory)

    @property
    def deliveries_per_s(self) -> float:
        return self.done / self.drain_s if self.drain_s else 0.0

    @property
    def retries(self) -> int:
        return self.attempts - self.done - self.dead

    @property
    def lost(self) -> int:
        return self.jobs - self.accepted_ids

    @property
    def nothing_lost(self) -> bool:
        return self.done == self.jobs and self.dead == 0 and self.accepted_ids == self.jobs

    def to_json(self) -> dict[str, object]:
        return {
            **asdict(self),
            "deliveries_per_s": self.deliveries_per_s,
            "retries": self.retries,
            "nothing_lost": self.nothing_lost,
        }


def _job_rows(payments: list[PaymentSeed], jobs: int) -> tuple[list[str], list[str], list[str]]:
    """(ids, tenants, payloads) of `jobs` charge jobs; payments are reused round-robin when
    there are fewer (the receiver, not the API, takes these webhooks, so nothing is paid)."""
    ids, tenants, payloads = [], [], []
    for n in range(jobs):
        payment = payments[n % len(payments)]
        ids.append(str(uuid7()))
        tenants.append(payment.tenant_id)
        payload = {
            "paymentId": payment.id,
            "invoiceId": payment.invoice_id,
            "amount": format_minor(payment.amount, payment.currency),
            "currency": payment.currency,
            "method": "card",
            "paymentToken": DEFAULT_TOKEN,
        }
        payloads.append(orjson.dumps(payload).decode())
    return ids, tenants, payloads


async def _insert(admin_db_url: str, payments: list[PaymentSeed], jobs: int) -> list[str]:
    ids, tenants, payloads = _job_rows(payments, jobs)
    connection = await asyncpg.connect(admin_db_url)
    try:
        await connection.execute(
            """
            INSERT INTO outbox_jobs (id, tenant_id, kind, payload, status, attempts, run_after,
                                     last_error, created_at, updated_at, finished_at)
            SELECT j.id, j.tenant_id, $4, j.payload::jsonb, 'pending', 0, 'infinity',
                   NULL, now(), now(), NULL
            FROM unnest($1::uuid[], $2::uuid[], $3::text[]) AS j(id, tenant_id, payload)
            """,
            ids,
            tenants,
            payloads,
            CHARGE,
        )
    finally:
        await connection.close()
    return ids


async def start_workers(bench: Bench, seeded: Seeded, name: str, **settings: str) -> list[Service]:
    """`tenvoice worker` processes, once each has logged that it polls the outbox."""
    workers = []
    for n in range(WORKERS):
        workers.append(
            bench.procs.start(
                f"{name}-worker-{n}",
                [str(BIN / "tenvoice"), "worker"],
                env=bench.env(seeded.app_url, settings),
                log_path=bench.results / "logs" / f"{name}-worker-{n}.log",
            )
        )
    for worker in workers:
        await wait_log(worker, "outbox worker started", 1)
    return workers


async def start_receiver(
    bench: Bench,
    name: str,
    fail_rate: float,
    secrets: dict[str, str] | None = None,
    port: int | None = None,
) -> Service:
    """`bench.receiver` (on a free port unless given), once it answers; `secrets` (path ->
    whsec_ secret) are those whose signatures it checks."""
    port = port or free_port()
    env = {**os.environ, "BENCH_RECEIVER_SECRETS": orjson.dumps(secrets or {}).decode()}
    argv = [sys.executable, "-m", "bench.receiver", "--port", str(port)]
    receiver = bench.procs.start(
        name,
        [*argv, "--fail-rate", str(fail_rate)],
        env=env,
        log_path=bench.results / "logs" / f"{name}.log",
        url=f"http://127.0.0.1:{port}",
    )
    await wait_ready(receiver, path="/stats", log_marker=None, within=20)
    return receiver


async def receiver_stats(receiver: Service) -> dict[str, Any]:
    async with httpx.AsyncClient(timeout=5) as client:
        stats: dict[str, Any] = (await client.get(f"{receiver.url}/stats")).json()
        return stats


async def drain(bench: Bench, seeded: Seeded, payments: list[PaymentSeed]) -> DrainResult:
    plan = bench.plan
    result = DrainResult(jobs=plan.drain_jobs)
    ids = await _insert(seeded.admin_db_url, payments, plan.drain_jobs)
    receiver = await start_receiver(bench, "w5-receiver", FAIL_RATE)
    workers: list[Service] = []
    try:
        workers = await start_workers(
            bench,
            seeded,
            "w5",
            gateway_latency_ms="0",
            gateway_callback_url=f"{receiver.url}/webhooks",
        )
        connection = await asyncpg.connect(seeded.admin_db_url)
        try:
            with RssSampler([w.pid for w in workers]) as sampler:
                started = datetime.now(UTC)
                result.other_due_jobs = await connection.fetchval(
                    "SELECT count(*) FROM outbox_jobs WHERE status = 'pending' "
                    "AND run_after <= now()"
                )
                await connection.execute(
                    "UPDATE outbox_jobs SET run_after = now() WHERE id = ANY($1::uuid[])", ids
                )
                await _wait_done(connection, receiver.url, ids, result, plan.drain_timeout_s)
            result.memory = sampler.memory
            await _finish(connection, ids, result, started)
        finally:
            await connection.close()
        stats = await receiver_stats(receiver)
        result.accepted_ids = stats["accepted"]
        result.accepted_total = stats["accepted_total"]
        result.refused = stats["refused"]
    finally:
        for worker in workers:
            bench.procs.stop(worker)
        bench.procs.stop(receiver)
    return result


async def _wait_done(
    connection: asyncpg.Connection,
    receiver: str,
    ids: list[str],
    result: DrainResult,
    limit: float,
) -> None:
    """Until every job is done or dead. The receiver's count is polled, not the database:
    a query over 10,000 ids ten times a second would take a share of the two cores the
    workers are being measured on. The database is asked when the receiver has them all,
    and now and then, for jobs that went dead."""
    deadline = time.monotonic() + limit
    next_check = time.monotonic() + 2.0
    async with httpx.AsyncClient(timeout=5) as client:
        while True:
            accepted = (await client.get(f"{receiver}/stats")).json()["accepted"]
            if accepted >= len(ids) or time.monotonic() >= next_check:
                next_check = time.monotonic() + 2.0
                finished = await connection.fetchval(
                    "SELECT count(*) FROM outbox_jobs WHERE id = ANY($1::uuid[]) "
                    "AND status IN ('done', 'dead')",
                    ids,
                )
                if finished >= len(ids):
                    return
            if time.monotonic() > deadline:
                result.timed_out = True
                return
            await asyncio.sleep(0.05)


async def _finish(
    connection: asyncpg.Connection, ids: list[str], result: DrainResult, started: datetime
) -> None:
    row = await connection.fetchrow(
        "SELECT count(*) FILTER (WHERE status = 'done') AS done, "
        "count(*) FILTER (WHERE status = 'dead') AS dead, "
        "count(*) FILTER (WHERE status = 'pending') AS pending, "
        "coalesce(sum(attempts), 0) AS attempts, max(finished_at) AS last "
        "FROM outbox_jobs WHERE id = ANY($1::uuid[])",
        ids,
    )
    result.done, result.dead, result.pending = row["done"], row["dead"], row["pending"]
    result.attempts = row["attempts"]
    if result.timed_out or row["last"] is None:
        result.drain_s = bench_seconds_since(started)
    else:
        result.drain_s = (row["last"] - started).total_seconds()
    p99 = await connection.fetchval(
        "SELECT finished_at FROM outbox_jobs WHERE id = ANY($1::uuid[]) AND status = 'done' "
        "ORDER BY finished_at OFFSET $2 LIMIT 1",
        ids,
        max(0, int(len(ids) * 0.99) - 1),
    )
    result.p99_s = (p99 - started).total_seconds() if p99 is not None else 0.0


def bench_seconds_since(moment: datetime) -> float:
    return (datetime.now(UTC) - moment).total_seconds()
