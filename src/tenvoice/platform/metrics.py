"""Prometheus metrics: request counts and latency by route template, method and status;
outbox jobs by outcome; and the counts by status that features keep in the database."""

import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass

from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, generate_latest
from sqlalchemy.ext.asyncio import AsyncConnection
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("tenvoice.metrics")

REQUESTS = Counter(
    "tenvoice_http_requests_total", "HTTP requests served", ["method", "route", "status"]
)
LATENCY = Histogram(
    "tenvoice_http_request_duration_seconds",
    "Time to serve an HTTP request",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)


class MetricsMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def observe(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, observe)
        finally:
            # The route template, not the path: ids would make every invoice its own series.
            route = scope.get("route")
            template = getattr(route, "path", "unmatched")
            REQUESTS.labels(scope["method"], template, str(status)).inc()
            LATENCY.labels(scope["method"], template).observe(time.perf_counter() - started)


# Series name -> status -> rows.
StatusCounts = dict[str, dict[str, int]]


@dataclass(frozen=True)
class StoredCounts:
    """Rows by status that the database holds, not any one process (a feature's deliveries,
    say), across tenants: read when /metrics is scraped and printed by `tenvoice jobs`.
    Features declare theirs (tenvoice/handlers.py); the platform names none."""

    read: Callable[[AsyncConnection], Awaitable[StatusCounts]]
    # Series name -> the gauge it sets, labelled by status.
    gauges: Mapping[str, Gauge]


def metrics_route(stored: Sequence[StoredCounts]) -> Callable[[Request], Awaitable[Response]]:
    async def metrics_response(request: Request) -> Response:
        for counts in stored:
            await _refresh(request, counts)
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return metrics_response


JOBS = Counter(
    "tenvoice_outbox_jobs_total",
    "Outbox job attempts by outcome (done, retry, dead)",
    ["kind", "outcome"],
)


async def _refresh(request: Request, stored: StoredCounts) -> None:
    try:
        async with request.app.state.db.lookup() as connection:
            counts = await stored.read(connection)
    except Exception as exc:
        # The other metrics are worth serving without these.
        log.warning("%s unavailable: %s", " and ".join(stored.gauges), type(exc).__name__)
        return
    for series, by_status in counts.items():
        for status, count in by_status.items():
            stored.gauges[series].labels(status).set(count)
