"""PostgreSQL restarting under load: every answer is 201 or 503, and no 201 is lost.

Runs against a private cluster (tests/pgcluster.py), never the shared server.
"""

import asyncio
import time
import uuid
from collections import Counter
from dataclasses import dataclass

import httpx
from sqlalchemy import select

from tenvoice.config import Settings
from tenvoice.handlers import EVENT_HANDLERS
from tenvoice.invoices.models import Invoice
from tenvoice.platform.db import Database
from tests.conftest import ADMIN_KEY, STANDARD_ITEMS, WEBHOOK_SECRET, make_customer, make_tenant
from tests.live import live_server
from tests.pgcluster import private_cluster

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


async def test_a_restart_under_load_answers_503_and_loses_no_acknowledged_invoice() -> None:
    with private_cluster() as cluster:
        settings = Settings(
            database_url=cluster.app_url, admin_key=ADMIN_KEY, gateway_webhook_secret=WEBHOOK_SECRET
        )
        db = Database(cluster.app_url, pool_size=CLIENTS)
        try:
            async with live_server(settings, db, EVENT_HANDLERS) as server:
                admin = {"Authorization": f"Bearer {ADMIN_KEY}"}
                tenant = await make_tenant(server.client, admin, "Restarting")
                owner = await make_customer(server.client, tenant)
                body = {"customerId": owner["id"], "items": STANDARD_ITEMS}
                answers: list[Answer] = []
                start = time.monotonic()

                async def client() -> None:
                    while (sent_at := time.monotonic() - start) < LOAD_SECONDS:
                        try:
                            response = await server.client.post(
                                "/api/invoices", json=body, headers=tenant.headers
                            )
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

                async with db.read(uuid.UUID(tenant.id)) as session:
                    stored = {str(i) for i in await session.scalars(select(Invoice.id))}
        finally:
            await db.dispose()

    statuses = Counter(answer.status for answer in answers)
    bad = [answer for answer in answers if answer.problem or answer.status not in (201, 503)]
    assert not bad, (statuses, bad[:5])
    assert statuses[503] > 0, f"the restart was never seen: {statuses}"
    acknowledged = {answer.invoice_id for answer in answers if answer.status == 201}
    assert acknowledged <= stored, f"{len(acknowledged - stored)} acknowledged invoices lost"
    # The service came back by itself once the database did.
    assert any(a.status == 201 and a.sent_at > back_at for a in answers), statuses
