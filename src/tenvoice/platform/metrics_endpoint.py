"""GET /metrics: every process's series in one view, and what the database holds.

What the database holds (outbox jobs by kind and status, features' counts) is read when
the endpoint is scraped; connection pools are watched as connections come and go, since
a scrape reaches one process and the pool in use is every process's.

TENVOICE_METRICS_TOKEN set, a scrape must send `Authorization: Bearer <token>`; unset,
the endpoint is open and belongs on a private network (README, Observability).
"""

import hmac
import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from functools import partial
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest
from sqlalchemy import event, func, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from starlette.requests import Request
from starlette.responses import Response

from tenvoice.platform import metrics_process
from tenvoice.platform.db import Database, utcnow
from tenvoice.platform.http import problem
from tenvoice.platform.metrics import (
    OUTBOX_OLDEST_DUE,
    OUTBOX_STORED,
    POOL_IN_USE,
    StoredCounts,
)
from tenvoice.platform.outbox import JobStatus, OutboxJob

log = logging.getLogger("tenvoice.metrics")

J = OutboxJob
_WATCHED = "_tenvoice_pools_watched"
_SEEN_KINDS: set[str] = set()


def metrics_route(
    stored: Sequence[StoredCounts], job_kinds: Sequence[str]
) -> Callable[[Request], Awaitable[Response]]:
    registry = scrape_registry()

    async def metrics_response(request: Request) -> Response:
        refused = _refused(request)
        if refused is not None:
            return refused
        db: Database = request.app.state.db
        watch_pools(db)
        await _refresh(db, "outbox jobs", partial(_read_outbox, job_kinds=job_kinds))
        for counts in stored:
            await _refresh(db, " and ".join(counts.gauges), partial(_read_stored, stored=counts))
        path = metrics_process.directory()
        if path is not None:
            metrics_process.forget_dead_processes(path)
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return metrics_response


def scrape_registry() -> CollectorRegistry:
    """Every process's files in multiprocess mode; this process's registry otherwise."""
    path = metrics_process.directory()
    if path is None:
        return REGISTRY
    from prometheus_client import multiprocess

    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, str(path))  # type: ignore[no-untyped-call]
    return registry


def authorized(header: str | None, token: str | None) -> bool:
    if not token:
        return True
    expected = f"Bearer {token}".encode()
    # Constant time: how much of a guess matched must not show in how long it took.
    return hmac.compare_digest((header or "").encode(), expected)


def _refused(request: Request) -> Response | None:
    token: str | None = request.app.state.settings.metrics_token
    if authorized(request.headers.get("authorization"), token):
        return None
    return problem(
        401,
        "unauthorized",
        "Missing or invalid credentials",
        "Send the metrics token as Authorization: Bearer <token>.",
        headers={"WWW-Authenticate": "Bearer"},
    )


def watch_pools(db: Database) -> None:
    """Keep POOL_IN_USE current for each of the database's pools (once per Database)."""
    if getattr(db, _WATCHED, False):
        return
    setattr(db, _WATCHED, True)
    _watch(db.write_engine, "write")
    if db.read_engine is not db.write_engine:
        _watch(db.read_engine, "read")


def _watch(engine: AsyncEngine, name: str) -> None:
    gauge = POOL_IN_USE.labels(name)
    sync = engine.sync_engine
    gauge.set(_checked_out(engine))

    # Listened on the engine, not its pool: dispose() replaces the pool, not the engine.
    @event.listens_for(sync, "checkout")
    def _on_checkout(*_: Any) -> None:
        gauge.set(_checked_out(engine))

    @event.listens_for(sync, "checkin")
    def _on_checkin(*_: Any) -> None:
        # Called before the pool takes the connection back, which it still counts.
        gauge.set(max(_checked_out(engine) - 1, 0))


def _checked_out(engine: AsyncEngine) -> int:
    checkedout = getattr(engine.sync_engine.pool, "checkedout", None)
    return int(checkedout()) if checkedout is not None else 0


async def _refresh(
    db: Database, what: str, read: Callable[[AsyncConnection], Awaitable[None]]
) -> None:
    try:
        async with db.lookup() as connection:
            await read(connection)
    except Exception as exc:
        # The other series are worth serving without these.
        log.warning("%s unavailable for /metrics: %s", what, type(exc).__name__)


async def _read_stored(connection: AsyncConnection, stored: StoredCounts) -> None:
    counts = await stored.read(connection)
    for series, by_status in counts.items():
        for status, count in by_status.items():
            stored.gauges[series].labels(status).set(count)


async def _read_outbox(connection: AsyncConnection, job_kinds: Sequence[str]) -> None:
    now = utcnow()
    rows = (
        await connection.execute(select(J.kind, J.status, func.count()).group_by(J.kind, J.status))
    ).all()
    # Every kind this service runs or this process has seen is set, zero included: a count
    # that fell to nothing must read 0, not the last reading of whoever saw it last.
    _SEEN_KINDS.update(job_kinds)
    _SEEN_KINDS.update(kind for kind, _, _ in rows)
    counts = {(kind, status.value): 0 for kind in _SEEN_KINDS for status in JobStatus}
    counts |= {(kind, status): int(total) for kind, status, total in rows}
    for (kind, status), total in counts.items():
        OUTBOX_STORED.labels(kind, status).set(total)
    # A claimed job's run_after is the end of its lease, in the future: only jobs waiting
    # for a worker are counted.
    oldest: datetime | None = await connection.scalar(
        select(func.min(J.run_after)).where(J.status == JobStatus.PENDING.value, J.run_after <= now)
    )
    OUTBOX_OLDEST_DUE.set(max((now - _aware(oldest)).total_seconds(), 0) if oldest else 0)


def _aware(value: datetime) -> datetime:
    # Should an aggregate's type not carry through, the driver's naive UTC is read as such.
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
