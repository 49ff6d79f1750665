"""/metrics in one process (the default registry), on both databases: what the outbox
holds, job latency after the worker ran a job, pools in use, requests answered before
routing counted under their route, the metrics token, and nothing secret in the text."""

import uuid
from datetime import timedelta

import httpx
from fastapi import FastAPI
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import insert

from tenvoice.config import Settings
from tenvoice.handlers import EVENT_HANDLERS
from tenvoice.main import create_app
from tenvoice.platform.db import Database, utcnow
from tenvoice.platform.outbox import Job, JobStatus, OutboxJob
from tenvoice.platform.worker import JobContext, Worker
from tests.conftest import ADMIN_KEY, SECRETS_KEY, WEBHOOK_SECRET, TenantHandle
from tests.problems import assert_problem

PROBE = "test.metrics_probe"


def sample(exposition: str, name: str, **labels: str) -> float | None:
    """The value of the sample `name` with exactly these labels, None if there is none."""
    for family in text_string_to_metric_families(exposition):
        for each in family.samples:
            if each.name == name and each.labels == labels:
                return each.value
    return None


def value(exposition: str, name: str, **labels: str) -> float:
    return sample(exposition, name, **labels) or 0.0


async def scrape(client: httpx.AsyncClient) -> str:
    response = await client.get("/metrics")
    assert response.status_code == 200, response.text
    return response.text


async def add_job(db: Database, status: JobStatus, due_in: timedelta) -> None:
    now = utcnow()
    async with db.autocommit() as connection:
        await connection.execute(
            insert(OutboxJob).values(
                id=uuid.uuid4(),
                tenant_id=None,
                kind=PROBE,
                payload={},
                status=status.value,
                attempts=0,
                run_after=now + due_in,
                created_at=now,
                updated_at=now,
            )
        )


async def test_outbox_jobs_by_kind_and_status_and_the_oldest_due(
    client: httpx.AsyncClient, db: Database
) -> None:
    await add_job(db, JobStatus.PENDING, timedelta(hours=1))  # not due yet
    await add_job(db, JobStatus.PENDING, timedelta(seconds=-90))  # due 90 s ago, unclaimed
    await add_job(db, JobStatus.DEAD, timedelta(0))

    text = await scrape(client)

    stored = "tenvoice_outbox_jobs_stored"
    assert sample(text, stored, kind=PROBE, status="pending") == 2
    assert sample(text, stored, kind=PROBE, status="dead") == 1
    # Kinds the service runs are shown with no job at all, at zero.
    assert sample(text, stored, kind="gateway.charge", status="dead") == 0
    oldest = value(text, "tenvoice_outbox_oldest_due_job_age_seconds")
    assert 90 <= oldest < 600


async def test_a_job_run_by_the_worker_is_timed_from_its_due_time(
    client: httpx.AsyncClient, db: Database, settings: Settings
) -> None:
    ran: list[Job] = []

    async def probe(job: Job, _: JobContext) -> None:
        ran.append(job)

    before = await scrape(client)
    await add_job(db, JobStatus.PENDING, timedelta(seconds=-2))
    worker = Worker(db, settings, {PROBE: probe}, EVENT_HANDLERS)
    try:
        assert await worker.drain() == 1
    finally:
        await worker.close()
    after = await scrape(client)

    assert len(ran) == 1
    assert ran[0].due_at is not None
    latency = "tenvoice_outbox_job_latency_seconds"
    assert (
        value(after, f"{latency}_count", kind=PROBE) - value(before, f"{latency}_count", kind=PROBE)
        == 1
    )
    # Due two seconds before it ran: the latency counts the wait, not only the run.
    waited = value(after, f"{latency}_sum", kind=PROBE) - value(
        before, f"{latency}_sum", kind=PROBE
    )
    assert waited >= 2
    assert value(after, f"{latency}_bucket", kind=PROBE, le="1.0") == value(
        before, f"{latency}_bucket", kind=PROBE, le="1.0"
    )
    run = "tenvoice_outbox_job_run_seconds_count"
    assert value(after, run, kind=PROBE) - value(before, run, kind=PROBE) == 1
    done = "tenvoice_outbox_jobs_total"
    assert (
        value(after, done, kind=PROBE, outcome="done")
        - value(before, done, kind=PROBE, outcome="done")
        == 1
    )
    assert sample(after, "tenvoice_outbox_jobs_stored", kind=PROBE, status="done") == 1


async def test_connections_in_use_are_shown_per_pool(client: httpx.AsyncClient) -> None:
    text = await scrape(client)
    in_use = sample(text, "tenvoice_db_pool_connections_in_use", pool="write")
    assert in_use is not None
    assert in_use >= 0


async def test_requests_answered_before_routing_count_under_their_route(
    client: httpx.AsyncClient, tenant_a: TenantHandle
) -> None:
    route = "/api/customers"
    headers = {**tenant_a.headers, "Idempotency-Key": f"k-{uuid.uuid4()}"}
    body = {"name": "Ada", "email": "ada@example.com"}
    before = await scrape(client)
    first = await client.post(route, json=body, headers=headers)
    again = await client.post(route, json=body, headers=headers)
    # Refused by the body guard, before any route ran.
    refused = await client.post(route, content=b"name=Ada", headers=tenant_a.headers)
    after = await scrape(client)

    assert first.status_code == 201
    assert again.status_code == 201
    assert again.headers["idempotent-replayed"] == "true"
    assert refused.status_code == 415

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    requests = "tenvoice_http_requests_total"
    assert delta(requests, method="POST", route=route, status="201") == 2, after
    assert delta(requests, method="POST", route=route, status="415") == 1
    assert delta(requests, method="POST", route="unmatched", status="201") == 0
    assert delta("tenvoice_idempotent_replays_total", route=route) == 1
    assert delta("tenvoice_idempotent_replays_total", route="unmatched") == 0


async def test_metrics_require_the_token_when_one_is_set(settings: Settings, db: Database) -> None:
    token = "metrics-" + uuid.uuid4().hex
    app = create_app(settings.model_copy(update={"metrics_token": token}), db=db)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://tenvoice.test") as c:
        missing = await c.get("/metrics")
        wrong = await c.get("/metrics", headers={"Authorization": f"Bearer {token}x"})
        other_scheme = await c.get("/metrics", headers={"Authorization": f"Basic {token}"})
        right = await c.get("/metrics", headers={"Authorization": f"Bearer {token}"})

    for refused in (missing, wrong, other_scheme):
        problem = assert_problem(refused, 401, "unauthorized")
        assert refused.headers["www-authenticate"] == "Bearer"
        assert token not in problem["detail"]
    assert right.status_code == 200
    assert "tenvoice_http_requests_total" in right.text


async def test_no_tenant_id_or_secret_in_the_metrics(
    app: FastAPI, client: httpx.AsyncClient, tenant_a: TenantHandle
) -> None:
    customer = await client.post(
        "/api/customers", json={"name": "Ada", "email": "a@example.com"}, headers=tenant_a.headers
    )
    await client.get(f"/api/customers/{customer.json()['id']}", headers=tenant_a.headers)

    text = await scrape(client)

    for secret in (tenant_a.id, tenant_a.key, tenant_a.key_id, customer.json()["id"]):
        assert secret not in text
    for secret in (ADMIN_KEY, SECRETS_KEY, WEBHOOK_SECRET):
        assert secret not in text
    assert "tenant" not in {
        label for family in text_string_to_metric_families(text) for s in family.samples
        for label in s.labels
    }  # fmt: skip
