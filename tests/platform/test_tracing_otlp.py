"""`tenvoice serve` with OTEL_EXPORTER_OTLP_ENDPOINT exports its spans over OTLP/HTTP to a
real receiver: the protobuf it posts to /v1/traces, decoded as a collector would."""

import asyncio
import contextlib
import signal
import sys
from collections.abc import AsyncIterator
from typing import Any

import httpx
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import KeyValue

from tenvoice.config import Settings
from tenvoice.platform.db import Database
from tests.cli import environment
from tests.conftest import ADMIN_KEY
from tests.live import eventually, free_socket, until_ready
from tests.webhooks.receivers import Received, Receiver, Reply, serving


@contextlib.asynccontextmanager
async def served(
    settings: Settings, collector: Receiver, **otel: str
) -> AsyncIterator[httpx.AsyncClient]:
    """`tenvoice serve` exporting to `collector`, until the block ends (then SIGTERM)."""
    with free_socket() as sock:
        port = sock.getsockname()[1]
    env = environment(
        database_url=settings.database_url,
        admin_key=ADMIN_KEY,
        gateway_webhook_secret=settings.gateway_webhook_secret or "",
        secrets_key=settings.secrets_key or "",
    ) | {"OTEL_EXPORTER_OTLP_ENDPOINT": collector.base_url, **otel}
    server = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tenvoice.cli", "serve", "--port", str(port),
        env=env, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            await until_ready(client)
            yield client
    finally:
        server.send_signal(signal.SIGTERM)
        # uvicorn, having shut down cleanly, raises the signal it caught again.
        assert await asyncio.wait_for(server.wait(), 20) in (0, -signal.SIGTERM)


async def test_serve_exports_request_spans_to_an_otlp_endpoint(
    settings: Settings, db: Database
) -> None:
    otel = {
        "OTEL_BSP_SCHEDULE_DELAY": "100",
        "OTEL_RESOURCE_ATTRIBUTES": "deployment.environment=test",
    }
    async with (
        serving(Receiver(lambda _: Reply(200))) as collector,
        served(settings, collector, **otel) as client,
    ):
        admin = {"Authorization": f"Bearer {ADMIN_KEY}", "X-Request-Id": "otlp-test-1"}
        created = await client.post("/api/tenants", json={"name": "Traced"}, headers=admin)
        assert created.status_code == 201, created.text
        await eventually(lambda: _exported(collector, "POST /api/tenants"))

    exports = [_decoded(request) for request in collector.received]
    assert {request.path for request in collector.received} == {"/v1/traces"}
    assert {r.headers["content-type"] for r in collector.received} == {"application/x-protobuf"}
    (resource, span) = _span(exports, "POST /api/tenants")
    assert resource["service.name"] == "tenvoice"
    assert resource["deployment.environment"] == "test"
    attributes = _values(span.attributes)
    assert attributes["http.status_code"] == 201
    assert attributes["tenvoice.request_id"] == "otlp-test-1"
    assert len(span.trace_id) == 16
    assert not any(ADMIN_KEY.encode() in request.body for request in collector.received)


async def test_spans_still_batched_are_sent_when_serve_stops(
    settings: Settings, db: Database
) -> None:
    async with serving(Receiver(lambda _: Reply(200))) as collector:
        # A batch due only in a minute: what arrives, arrives because stopping flushed it.
        async with served(settings, collector, OTEL_BSP_SCHEDULE_DELAY="60000") as client:
            assert (await client.get("/healthz")).status_code == 200
            assert not await _exported(collector, "GET /healthz")
        assert await _exported(collector, "GET /healthz")


def _decoded(request: Received) -> ExportTraceServiceRequest:
    export = ExportTraceServiceRequest()
    export.ParseFromString(request.body)
    return export


async def _exported(collector: Receiver, name: str) -> bool:
    exports = [_decoded(request) for request in collector.received]
    return any(
        span.name == name
        for export in exports
        for resource_spans in export.resource_spans
        for scope_spans in resource_spans.scope_spans
        for span in scope_spans.spans
    )


def _span(exports: list[ExportTraceServiceRequest], name: str) -> tuple[dict[str, Any], Any]:
    found = [
        (_values(resource_spans.resource.attributes), span)
        for export in exports
        for resource_spans in export.resource_spans
        for scope_spans in resource_spans.scope_spans
        for span in scope_spans.spans
        if span.name == name
    ]
    assert len(found) == 1, found
    return found[0]


def _values(attributes: Any) -> dict[str, Any]:
    pairs: list[KeyValue] = list(attributes)
    return {pair.key: getattr(pair.value, str(pair.value.WhichOneof("value"))) for pair in pairs}
