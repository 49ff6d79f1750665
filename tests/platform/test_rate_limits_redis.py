"""Rate limits shared through Redis: by apps, by `tenvoice serve` processes, and what happens
when Redis goes away and comes back (API.md "Rate limits")."""

import asyncio
import contextlib
import logging
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from prometheus_client import REGISTRY

from tenvoice.config import Settings
from tenvoice.main import create_app
from tenvoice.platform.db import Database
from tests.cli import environment
from tests.conftest import ADMIN_KEY, SECRETS_KEY, WEBHOOK_SECRET, Backend, TenantHandle
from tests.live import eventually, free_socket, until_ready
from tests.problems import assert_problem
from tests.redis_servers import private_redis, shared_redis, unique_prefix


@pytest.fixture
def redis_url() -> str:
    return shared_redis()


@contextlib.asynccontextmanager
async def served(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://t.test") as client:
            yield client
    finally:
        # No lifespan runs under ASGITransport, so the Redis client is closed here.
        await app.state.rate_limit_counters.close()


def redis_app(settings: Settings, db: Database, url: str, prefix: str, rate: str) -> FastAPI:
    update = {"redis_url": url, "redis_key_prefix": prefix, "rate_limit": rate}
    return create_app(settings.model_copy(update=update), db=db)


async def test_apps_on_one_redis_share_the_budgets(
    settings: Settings, db: Database, redis_url: str, tenant_a: TenantHandle
) -> None:
    prefix = unique_prefix()
    first = redis_app(settings, db, redis_url, prefix, "3/minute")
    second = redis_app(settings, db, redis_url, prefix, "3/minute")
    async with served(first) as one, served(second) as two:
        statuses = []
        for api in (one, two, one, two):
            response = await api.get("/api/customers", headers=tenant_a.headers)
            statuses.append(response.status_code)
            assert response.headers["ratelimit-policy"] == (
                '"credential";q=3;w=60, "tenant";q=12;w=60'
            )
        assert statuses == [200, 200, 200, 429]
        assert response.headers["ratelimit"].startswith('"credential";r=0;t=')
        assert_problem(response, 429, "rate_limited")


def _backend_errors() -> float:
    return REGISTRY.get_sample_value("tenvoice_rate_limit_backend_errors_total") or 0.0


async def test_without_redis_requests_pass_and_limiting_resumes_when_it_is_back(
    settings: Settings, db: Database, tenant_a: TenantHandle, caplog: pytest.LogCaptureFixture
) -> None:
    with private_redis() as redis:
        app = redis_app(settings, db, redis.url, unique_prefix(), "3/minute")
        async with served(app) as api:

            async def get() -> httpx.Response:
                return await api.get("/api/customers", headers=tenant_a.headers)

            assert [(await get()).status_code for _ in range(4)] == [200, 200, 200, 429]

            redis.stop()
            errors = _backend_errors()
            caplog.clear()
            with caplog.at_level(logging.WARNING, logger="tenvoice.ratelimit"):
                for _ in range(8):
                    started = time.monotonic()
                    response = await get()
                    # Let through, unlimited, and without waiting on a dead Redis.
                    assert response.status_code == 200, response.text
                    assert "ratelimit" not in response.headers
                    assert time.monotonic() - started < 0.5
                    await asyncio.sleep(0.3)  # past the first back-off: Redis is tried again
            assert _backend_errors() >= errors + 2
            warnings = [r for r in caplog.records if r.name.startswith("tenvoice.ratelimit")]
            assert len(warnings) == 1, [r.getMessage() for r in warnings]
            assert "Redis" in warnings[0].getMessage()

            redis.start()  # the same port, empty

            async def limited_again() -> bool:
                return "ratelimit" in (await get()).headers

            await eventually(limited_again, timeout=15, interval=0.2)
            statuses = [(await get()).status_code for _ in range(3)]
            assert statuses[-1] == 429, statuses


async def test_two_serve_processes_share_one_budget(
    backend: Backend, db: Database, redis_url: str, tmp_path: Path
) -> None:
    prefix = unique_prefix()
    ports = []
    for _ in range(2):
        with free_socket() as sock:
            ports.append(sock.getsockname()[1])
    env = environment(
        database_url=backend.url,
        admin_key=ADMIN_KEY,
        gateway_webhook_secret=WEBHOOK_SECRET,
        secrets_key=SECRETS_KEY,
        redis_url=redis_url,
        redis_key_prefix=prefix,
        rate_limit="10/minute",
        worker="off",
    )
    processes = [await _serve(port, env, tmp_path / f"serve-{port}.log") for port in ports]
    try:
        async with (
            httpx.AsyncClient(base_url=f"http://127.0.0.1:{ports[0]}", timeout=10) as one,
            httpx.AsyncClient(base_url=f"http://127.0.0.1:{ports[1]}", timeout=10) as two,
        ):
            await asyncio.gather(until_ready(one), until_ready(two))
            tenant = await _tenant(one)
            statuses = []
            for api in (one, two) * 6:
                response = await api.get("/api/customers", headers=tenant.headers)
                statuses.append(response.status_code)
            assert sorted(statuses) == [200] * 10 + [429] * 2, statuses

            # The admin's new budget for the tenant reaches the other process within a moment
            # (on PostgreSQL, through the feed that also carries revocations).
            admin = {"Authorization": f"Bearer {ADMIN_KEY}"}
            changed = await one.patch(
                f"/api/tenants/{tenant.id}", json={"rateLimit": "50/minute"}, headers=admin
            )
            assert changed.status_code == 200, changed.text

            async def applied() -> bool:
                response = await two.get("/api/customers", headers=tenant.headers)
                return '"tenant";q=50;w=60' in response.headers["ratelimit-policy"]

            await eventually(applied, timeout=5, interval=0.1)
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            await asyncio.wait_for(process.wait(), 20)


async def _tenant(client: httpx.AsyncClient) -> TenantHandle:
    admin = {"Authorization": f"Bearer {ADMIN_KEY}"}
    created = await client.post("/api/tenants", json={"name": "Shared"}, headers=admin)
    assert created.status_code == 201, created.text
    tenant_id = created.json()["id"]
    key = await client.post(f"/api/tenants/{tenant_id}/api-keys", json={"name": "k"},
                            headers=admin)  # fmt: skip
    assert key.status_code == 201, key.text
    return TenantHandle(tenant_id, key.json()["key"], key.json()["id"])


async def _serve(port: int, env: dict[str, str], log: Path) -> asyncio.subprocess.Process:
    with log.open("wb") as stderr:  # the child keeps its own copy
        return await asyncio.create_subprocess_exec(
            sys.executable, "-m", "tenvoice.cli", "serve", "--port", str(port),
            env=env, stdout=asyncio.subprocess.DEVNULL, stderr=stderr,
        )  # fmt: skip
