"""Prometheus metrics: request counts and latency by route template, method and status;
outbox jobs and webhook attempts by outcome; webhook deliveries and endpoints by status."""

import logging
import time

from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, generate_latest
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tenvoice.webhooks.delivery_queries import webhook_counts

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


async def metrics_response(request: Request) -> Response:
    await _count_webhooks(request)
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


JOBS = Counter(
    "tenvoice_outbox_jobs_total",
    "Outbox job attempts by outcome (done, retry, dead)",
    ["kind", "outcome"],
)

WEBHOOK_ATTEMPTS = Counter(
    "tenvoice_webhook_attempts_total",
    "Webhook delivery attempts by outcome (succeeded; retry: failed, to be tried again; "
    "failed: failed for good)",
    ["outcome"],
)
WEBHOOK_DELIVERIES = Gauge(
    "tenvoice_webhook_deliveries", "Webhook deliveries by status, all tenants", ["status"]
)
WEBHOOK_ENDPOINTS = Gauge(
    "tenvoice_webhook_endpoints", "Webhook endpoints by status, all tenants", ["status"]
)


async def _count_webhooks(request: Request) -> None:
    """Deliveries and endpoints by status, read when scraped (the database holds them, not
    any one process)."""
    try:
        async with request.app.state.db.lookup() as connection:
            counts = await webhook_counts(connection)
    except Exception as exc:
        # The other metrics are worth serving without these.
        log.warning("webhook counts unavailable: %s", type(exc).__name__)
        return
    for status, count in counts.deliveries.items():
        WEBHOOK_DELIVERIES.labels(status).set(count)
    for status, count in counts.endpoints.items():
        WEBHOOK_ENDPOINTS.labels(status).set(count)
