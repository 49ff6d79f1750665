"""Acceptance: a worker killed with SIGKILL mid-delivery, restarted: every payment completes.

The API runs in the test without a worker of its own; `tenvoice worker` runs as a real
process and delivers the gateway's webhooks through a proxy that holds each one a moment,
so the first worker can be killed while deliveries are in flight. Its claimed jobs come
back when their leases run out, a second worker delivers them again, and the inbox makes
each webhook count once.
"""

import asyncio
import contextlib
import os
import signal
import socket
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from sqlalchemy import Row, select
from starlette.types import Receive, Scope, Send

from tenvoice.config import Settings
from tenvoice.gateway.simulator import CHARGE
from tenvoice.platform.db import Database
from tenvoice.platform.inbox import InboxMessage
from tenvoice.platform.messages import EventHandlers
from tenvoice.platform.outbox import JobStatus, OutboxJob
from tests.conftest import (
    ADMIN_KEY,
    SECRETS_KEY,
    WEBHOOK_SECRET,
    Backend,
    TenantHandle,
    make_customer,
    make_invoice,
    make_tenant,
)
from tests.live import LiveServer, eventually, free_socket, live_server
from tests.payments.support import pay

TENVOICE = Path(__file__).resolve().parents[2] / ".venv" / "bin" / "tenvoice"
PAYMENTS = 20
DELIVERY_DELAY = 0.3
LEASE_SECONDS = 2


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        # The test runner owns the process's signals, not this server.
        yield


@dataclass
class SlowProxy:
    """Holds each webhook a moment, then forwards it to the API and returns its answer.

    A delivery whose sender died meanwhile is still forwarded: the webhook is applied
    while the worker never learns it was, which is what makes the redelivery a duplicate.
    """

    target: str
    http: httpx.AsyncClient
    arrived: asyncio.Event = field(default_factory=asyncio.Event)
    # (webhook id, the API's status, its ack), in the order the API answered.
    answers: list[tuple[str, int, str]] = field(default_factory=list)
    received: list[str] = field(default_factory=list)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        assert scope["type"] == "http"
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body", False):
                break
        headers = {
            name.decode("latin-1"): value.decode("latin-1")
            for name, value in scope["headers"]
            if name.startswith(b"webhook-") or name == b"content-type"
        }
        webhook_id = headers.get("webhook-id", "")
        self.received.append(webhook_id)
        self.arrived.set()
        await asyncio.sleep(DELIVERY_DELAY)
        response = await self.http.post(self.target, content=body, headers=headers)
        ack = response.json().get("status", "") if response.status_code == 200 else ""
        self.answers.append((webhook_id, response.status_code, ack))
        content_type = response.headers.get("content-type", "application/json")
        await send(
            {
                "type": "http.response.start",
                "status": response.status_code,
                "headers": [(b"content-type", content_type.encode("latin-1"))],
            }
        )
        await send({"type": "http.response.body", "body": response.content})


@contextlib.asynccontextmanager
async def serve(app: Any, sock: socket.socket) -> AsyncIterator[None]:
    server = _Server(uvicorn.Config(app, lifespan="off", log_level="warning"))
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:
            if serving.done():
                serving.result()
            await asyncio.sleep(0.01)
        yield
    finally:
        server.should_exit = True
        await serving
        sock.close()


@dataclass
class WorkerProcess:
    process: asyncio.subprocess.Process
    output: list[str]
    reader: asyncio.Task[None]

    def log(self) -> str:
        return "".join(self.output)


async def _collect(stream: asyncio.StreamReader, into: list[str]) -> None:
    while line := await stream.readline():
        into.append(line.decode(errors="replace"))


async def start_worker(backend: Backend, callback_url: str) -> WorkerProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TENVOICE_")}
    env |= {
        "TENVOICE_DATABASE_URL": backend.url,
        "TENVOICE_ADMIN_KEY": ADMIN_KEY,
        "TENVOICE_GATEWAY_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "TENVOICE_SECRETS_KEY": SECRETS_KEY,
        "TENVOICE_GATEWAY_CALLBACK_URL": callback_url,
        "TENVOICE_GATEWAY_LATENCY_MS": "0",
        "TENVOICE_WORKER_LEASE_SECONDS": str(LEASE_SECONDS),
        "TENVOICE_WORKER_POLL_SECONDS": "0.05",
        "TENVOICE_WORKER_CONCURRENCY": "4",
    }
    process = await asyncio.create_subprocess_exec(
        TENVOICE,
        "worker",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    assert process.stdout is not None
    output: list[str] = []
    return WorkerProcess(process, output, asyncio.create_task(_collect(process.stdout, output)))


async def stop_worker(worker: WorkerProcess) -> None:
    """Make sure the process is gone, whatever happened to the test."""
    if worker.process.returncode is None:
        worker.process.kill()
        await worker.process.wait()
    await asyncio.wait_for(worker.reader, 10)


async def outbox(db: Database) -> list[Row[Any]]:
    """The gateway's jobs (finalizing also schedules each invoice's overdue check)."""
    charges = select(OutboxJob.__table__).where(OutboxJob.kind == CHARGE)
    async with db.lookup() as connection:
        return list((await connection.execute(charges)).all())


async def inbox(db: Database) -> list[Row[Any]]:
    async with db.lookup() as connection:
        return list((await connection.execute(select(InboxMessage.__table__))).all())


async def payment_statuses(live: LiveServer, tenant: TenantHandle) -> Counter[str]:
    response = await live.client.get("/api/payments?pageSize=100", headers=tenant.headers)
    assert response.status_code == 200, response.text
    return Counter(payment["status"] for payment in response.json()["data"])


async def test_killed_worker_restarted_every_payment_still_completes(
    backend: Backend, settings: Settings, db: Database, event_handlers: EventHandlers
) -> None:
    admin = {"Authorization": f"Bearer {ADMIN_KEY}"}
    workers: list[WorkerProcess] = []
    async with (
        live_server(settings, db, event_handlers, worker=False, gateway_latency_ms=0) as live,
        httpx.AsyncClient(timeout=30) as forwarder,
    ):
        proxy = SlowProxy(f"{live.url}/api/webhooks/payments", forwarder)
        proxy_socket = free_socket()
        proxy_url = f"http://127.0.0.1:{proxy_socket.getsockname()[1]}/api/webhooks/payments"
        async with serve(proxy, proxy_socket):
            tenant = await make_tenant(live.client, admin, "Acme", defaultTaxRate="11")
            customer = await make_customer(live.client, tenant)
            invoices: dict[str, dict[str, Any]] = {}
            payments: dict[str, str] = {}  # payment id -> invoice id
            for _ in range(PAYMENTS):
                invoice = await make_invoice(live.client, tenant, customer["id"], finalize=True)
                invoices[invoice["id"]] = invoice
                response = await pay(live.client, tenant, invoice["id"], invoice["total"])
                assert response.status_code == 201, response.text
                payments[response.json()["id"]] = invoice["id"]
            jobs = await outbox(db)
            assert len(jobs) == PAYMENTS
            assert {job.payload["paymentId"] for job in jobs} == set(payments)

            try:
                first = await start_worker(backend, proxy_url)
                workers.append(first)
                arrived = asyncio.create_task(proxy.arrived.wait())
                exited = asyncio.create_task(first.process.wait())
                await asyncio.wait(
                    {arrived, exited}, timeout=30, return_when=asyncio.FIRST_COMPLETED
                )
                arrived.cancel()
                exited.cancel()
                assert proxy.arrived.is_set(), f"no delivery reached the proxy:\n{first.log()}"

                os.kill(first.process.pid, signal.SIGKILL)
                assert await asyncio.wait_for(first.process.wait(), 10) == -signal.SIGKILL

                # Killed mid-delivery: the payment of the delivery in flight (at least) is
                # not complete, and its job is still claimed by the dead worker.
                assert (await payment_statuses(live, tenant))["succeeded"] < PAYMENTS
                first_delivery = proxy.received[0]
                stranded = {
                    job.id
                    for job in await outbox(db)
                    if job.status == JobStatus.PENDING and job.attempts >= 1
                }
                assert uuid.UUID(first_delivery.removeprefix("msg_")) in stranded

                second = await start_worker(backend, proxy_url)
                workers.append(second)

                async def settled() -> bool:
                    statuses = await payment_statuses(live, tenant)
                    jobs = await outbox(db)
                    return statuses["succeeded"] == PAYMENTS and all(
                        job.status == JobStatus.DONE for job in jobs
                    )

                try:
                    await eventually(settled, timeout=30, interval=0.1)
                except AssertionError:
                    raise AssertionError(
                        f"not settled; second worker's log:\n{second.log()}"
                    ) from None

                second.process.send_signal(signal.SIGTERM)
                code = await asyncio.wait_for(second.process.wait(), 20)
                assert code == 0, second.log()
            finally:
                for worker in workers:
                    await stop_worker(worker)

        # Every stranded job came back once its lease ran out and was run again.
        final = {job.id: job for job in await outbox(db)}
        assert len(final) == PAYMENTS
        assert all(job.kind == CHARGE for job in final.values())
        assert {job.status for job in final.values()} == {JobStatus.DONE}
        assert all(final[job_id].attempts >= 2 for job_id in stranded)

        # The delivery the first worker never saw answered was applied anyway (the proxy
        # forwarded it); every redelivery of it was a duplicate. Usually there is one; on a
        # loaded machine an attempt may outlast its 2 s lease and be run again, which at
        # least once allows, and which must still apply nothing twice.
        first_answers = [ack for webhook, _, ack in proxy.answers if webhook == first_delivery]
        assert first_answers[0] == "processed", proxy.answers
        assert len(first_answers) >= 2, proxy.answers
        assert set(first_answers[1:]) == {"duplicate"}, proxy.answers

        # Exactly once: one inbox row per webhook id, the job's, each applied.
        messages = await inbox(db)
        assert sorted(message.message_id for message in messages) == sorted(
            f"msg_{job_id.hex}" for job_id in final
        )
        assert {message.outcome for message in messages} == {"processed"}

        for payment_id, invoice_id in payments.items():
            payment = (
                await live.client.get(f"/api/payments/{payment_id}", headers=tenant.headers)
            ).json()
            assert payment["status"] == "succeeded"
            invoice = (
                await live.client.get(f"/api/invoices/{invoice_id}", headers=tenant.headers)
            ).json()
            assert invoice["status"] == "paid"
            assert invoice["amountPaid"] == invoice["total"] == invoices[invoice_id]["total"]
            assert invoice["amountDue"] == "0.00"
            timeline = (
                await live.client.get(
                    f"/api/invoices/{invoice_id}/timeline", headers=tenant.headers
                )
            ).json()["data"]
            kinds = Counter(event["eventType"] for event in timeline)
            assert kinds["payment.succeeded"] == 1, timeline
            assert kinds["invoice.paid"] == 1, timeline
