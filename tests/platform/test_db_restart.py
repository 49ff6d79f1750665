"""PostgreSQL going away: every answer is 201 or 503 with Retry-After, and no 201 is lost.

Runs against a private cluster (tests/pgcluster.py), never the shared server.
"""

import asyncio
import contextlib
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import asyncpg
import httpx
import pytest
from sqlalchemy import select

from tenvoice.config import Settings
from tenvoice.handlers import EVENT_HANDLERS
from tenvoice.invoices.models import Invoice
from tenvoice.platform.db import Database
from tests.conftest import (
    ADMIN_KEY,
    SECRETS_KEY,
    STANDARD_ITEMS,
    TEST_BUDGETS,
    WEBHOOK_SECRET,
    TenantHandle,
    make_customer,
    make_tenant,
)
from tests.databases import APP_ROLE
from tests.live import LiveServer, live_server
from tests.pgcluster import Cluster, private_cluster

CLIENTS = 10
LOAD_SECONDS = 5.0
RESTART_AFTER = 1.5


@dataclass(frozen=True)
class Answer:
    sent_at: float
    status: int | None  # None: no answer at all (the connection failed)
    invoice_id: str | None = None
    problem: str = ""


def judge(response: httpx.Response, sent_at: float) -> Answer:
    if response.status_code == 201:
        return Answer(sent_at, 201, response.json()["id"])
    problem = ""
    if response.status_code == 503:
        ok = (
            response.headers.get("content-type", "").startswith("application/problem+json")
            and response.headers.get("retry-after") == "1"
            and response.json()["code"] == "service_unavailable"
        )
        problem = "" if ok else f"malformed 503: {response.headers} {response.text}"
    else:
        problem = response.text[:300]
    return Answer(sent_at, response.status_code, problem=problem)


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    with private_cluster() as running:
        yield running


@dataclass(frozen=True)
class Service:
    server: LiveServer
    db: Database
    tenant: TenantHandle
    invoice: dict[str, Any]  # a body that creates an invoice

    async def create_invoice(self) -> httpx.Response:
        return await self.server.client.post(
            "/api/invoices", json=self.invoice, headers=self.tenant.headers
        )


@contextlib.asynccontextmanager
async def service(cluster: Cluster, name: str) -> AsyncIterator[Service]:
    """The app on a real socket, on the cluster, with a tenant that has a customer."""
    settings = Settings(
        database_url=cluster.app_url,
        admin_key=ADMIN_KEY,
        gateway_webhook_secret=WEBHOOK_SECRET,
        secrets_key=SECRETS_KEY,
        **TEST_BUDGETS,
    )
    db = Database(cluster.app_url, pool_size=CLIENTS)
    try:
        async with live_server(settings, db, EVENT_HANDLERS) as server:
            admin = {"Authorization": f"Bearer {ADMIN_KEY}"}
            tenant = await make_tenant(server.client, admin, name)
            owner = await make_customer(server.client, tenant)
            yield Service(server, db, tenant, {"customerId": owner["id"], "items": STANDARD_ITEMS})
    finally:
        await db.dispose()


async def test_a_restart_under_load_answers_503_and_loses_no_acknowledged_invoice(
    cluster: Cluster,
) -> None:
    async with service(cluster, "Restarting") as app:
        answers: list[Answer] = []
        start = time.monotonic()

        async def client() -> None:
            # The load lasts until the restart is over, however long a loaded machine takes
            # to get to it and through it.
            while (sent_at := time.monotonic() - start) < LOAD_SECONDS or not restarted.done():
                try:
                    response = await app.create_invoice()
                except httpx.HTTPError as exc:
                    answers.append(Answer(sent_at, None, problem=repr(exc)))
                else:
                    answers.append(judge(response, sent_at))

        async def restart() -> float:
            await asyncio.sleep(RESTART_AFTER)
            await asyncio.to_thread(cluster.restart)
            return time.monotonic() - start

        restarted = asyncio.create_task(restart())
        await asyncio.gather(*(client() for _ in range(CLIENTS)))
        back_at = await restarted
        async with app.db.read(uuid.UUID(app.tenant.id)) as session:
            stored = {str(i) for i in await session.scalars(select(Invoice.id))}

    statuses = Counter(answer.status for answer in answers)
    bad = [answer for answer in answers if answer.problem or answer.status not in (201, 503)]
    assert not bad, (statuses, bad[:5])
    assert statuses[503] > 0, f"the restart (over at {back_at:.1f} s) was never seen: {statuses}"
    acknowledged = {answer.invoice_id for answer in answers if answer.status == 201}
    assert acknowledged <= stored, f"{len(acknowledged - stored)} acknowledged invoices lost"
    # The service came back by itself once the database did.
    assert any(a.status == 201 and a.sent_at > back_at for a in answers), statuses


async def test_too_many_connections_is_503_and_passes(cluster: Cluster) -> None:
    async with service(cluster, "Crowded") as app:
        superuser = await asyncpg.connect(
            f"postgresql://postgres@127.0.0.1:{cluster.port}/postgres"
        )
        try:
            # Every new connection of the service's role is now refused with SQLSTATE 53300.
            await superuser.execute(f"ALTER ROLE {APP_ROLE} CONNECTION LIMIT 0")
            await app.db.dispose()  # no pooled connection left to hide it
            for _ in range(3):
                answer = judge(await app.create_invoice(), 0)
                assert (answer.status, answer.problem) == (503, ""), answer
                listed = await app.server.client.get("/api/invoices", headers=app.tenant.headers)
                assert judge(listed, 0) == Answer(0, 503), listed.text
        finally:
            await superuser.execute(f"ALTER ROLE {APP_ROLE} CONNECTION LIMIT -1")
            await superuser.close()
        created = await app.create_invoice()
        assert created.status_code == 201, created.text
