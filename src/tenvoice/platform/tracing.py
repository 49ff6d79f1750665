"""OpenTelemetry tracing, set up in one place (DESIGN item 10).

Off unless the environment asks for it (`OTEL_EXPORTER_OTLP_ENDPOINT`, its `_TRACES_` form, or
`OTEL_TRACES_EXPORTER` other than `none`). Off, no SDK provider exists, nothing is
instrumented, and every helper below returns at its first line: no context is read, written
or stored. On, each process (each `serve --workers N` worker, or `tenvoice worker`) builds one
provider that batches spans to the exporter the environment names.

Every instrumentation is handed the provider explicitly rather than reading the global one:
OpenTelemetry lets a process set its global provider once, and tests install an in-memory
provider and take it away again (`install_in_memory`, `uninstall`).

A trace outlives the request that started it: the outbox job row, and each webhook delivery
row, keep the W3C context (`traceparent`, `tracestate`) of the transaction that wrote them
(and the id of the request it served), and the worker continues that trace when it runs them.
"""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import TYPE_CHECKING, Any

import httpx
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Link, Span, SpanKind, Status, StatusCode, Tracer
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tenvoice.platform.tenancy import current_request_id

# The SDK and the instrumentations are imported only when tracing is on: off, a process
# does not load them at all.
if TYPE_CHECKING:
    from fastapi import FastAPI
    from opentelemetry.metrics import NoOpMeterProvider
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from sqlalchemy.ext.asyncio import AsyncEngine

SERVICE = "tenvoice"
TENANT_ID = "tenant.id"
REQUEST_ID = "tenvoice.request_id"
# Only the W3C trace context is stored with a job, never baggage (whatever a client sent).
_PROPAGATOR = TraceContextTextMapPropagator()
# The hosted page's path holds the link token, which opens the invoice to whoever has it.
_HOSTED_TOKEN = re.compile(r"(/hosted/invoices/)[^/?#]+")
_URL_ATTRIBUTES = ("url.path", "url.full", "http.target", "http.url")
_REQUEST_ID_SCOPE_KEY = "tenvoice.request_id"  # where RequestIdMiddleware leaves it
_STORED_REQUEST_ID = "tenvoice-request-id"


def _no_meters() -> NoOpMeterProvider:
    # Metrics are Prometheus's (platform/metrics.py); the instrumentations' own stay no-ops.
    from opentelemetry.metrics import NoOpMeterProvider

    return NoOpMeterProvider()


class _Tracing:
    provider: TracerProvider | None = None
    tracer: Tracer | None = None
    # Built from the environment here (and shut down here), rather than installed by a test.
    owned = False
    global_set = False
    engines: list[AsyncEngine] = []  # noqa: RUF012 (process state, one instance)


_state = _Tracing()


# -- set-up ----------------------------------------------------------------------------


def enabled_by_environment(environ: Mapping[str, str] = os.environ) -> bool:
    exporter = environ.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if exporter == "none":
        return False
    endpoint = environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
    return bool(exporter or endpoint or environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"))


def configure() -> TracerProvider | None:
    """The process's provider: the one already installed, else one built from the
    environment if it asks for tracing, else None (tracing off)."""
    if _state.provider is None and enabled_by_environment():
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        provider = TracerProvider(resource=_resource())
        provider.add_span_processor(BatchSpanProcessor(_exporter()))
        install(provider)
        _state.owned = True
        if not _state.global_set:
            # For any library that reads the global provider; ours are handed it.
            trace.set_tracer_provider(provider)
            _state.global_set = True
    return _state.provider


def _resource() -> Resource:
    from opentelemetry.sdk.resources import SERVICE_NAME, OTELResourceDetector, Resource

    # OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES win over the default name.
    return Resource.create({SERVICE_NAME: SERVICE}).merge(OTELResourceDetector().detect())


def _exporter() -> SpanExporter:
    from importlib.metadata import entry_points

    name = os.environ.get("OTEL_TRACES_EXPORTER", "").strip().lower() or "otlp"
    # Only the OTLP/HTTP exporter is installed; `otlp` means it.
    name = {"otlp": "otlp_proto_http"}.get(name.split(",")[0].strip(), name)
    found = entry_points(group="opentelemetry_traces_exporter", name=name)
    if not found:
        raise RuntimeError(f"OTEL_TRACES_EXPORTER={name!r} names no installed exporter")
    exporter: SpanExporter = next(iter(found)).load()()
    return exporter


def install(provider: TracerProvider) -> None:
    _state.provider = provider
    _state.tracer = provider.get_tracer("tenvoice")
    _state.owned = False


def install_in_memory() -> InMemorySpanExporter:
    """For tests: every span from now on, synchronously into the returned exporter."""
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    provider = TracerProvider(resource=_resource())
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    install(provider)
    return exporter


def uninstall() -> None:
    """Tracing off again in this process (tests): the engines' listeners go too."""
    if _state.engines:
        from opentelemetry.instrumentation.sqlalchemy.engine import EngineTracer

        EngineTracer.remove_all_event_listeners()  # type: ignore[no-untyped-call]  # untyped
    _state.engines.clear()
    _state.provider = _state.tracer = None
    _state.owned = False


def shutdown() -> None:
    """Flush and stop a provider this module built (at the end of a lifespan or worker)."""
    provider = _state.provider
    if provider is not None and _state.owned:
        uninstall()
        provider.shutdown()


def active() -> bool:
    return _state.provider is not None


# -- instrumentation -------------------------------------------------------------------


def instrument_app(app: FastAPI) -> None:
    provider = _state.provider
    if provider is None:
        return
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

    app.add_middleware(_RequestAttributes)
    FastAPIInstrumentor.instrument_app(
        app,
        server_request_hook=_scrub_url,
        tracer_provider=provider,
        meter_provider=_no_meters(),
        # The ASGI receive/send sub-spans say nothing the request span does not.
        exclude_spans=["receive", "send"],
    )


def instrument_engines(*engines: AsyncEngine) -> None:
    """Statement spans for each engine (once each); SQL text only, never its parameters."""
    tracer = _state.tracer
    if tracer is None:
        return
    from opentelemetry.instrumentation.sqlalchemy.engine import EngineTracer

    counter = _no_meters().get_meter(__name__).create_up_down_counter("db.client.connections")
    for engine in engines:
        if any(engine is seen for seen in _state.engines):
            continue
        _state.engines.append(engine)
        EngineTracer(tracer, engine.sync_engine, counter)  # type: ignore[no-untyped-call]


def instrument_client(client: httpx.AsyncClient) -> None:
    if _state.provider is not None:
        from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor

        HTTPXClientInstrumentor.instrument_client(
            client, tracer_provider=_state.provider, meter_provider=_no_meters()
        )


def traced_transport(transport: httpx.AsyncHTTPTransport) -> httpx.AsyncBaseTransport:
    """A transport to tenants' endpoints: as it is when off; on, wrapped in client spans (and
    `traceparent`) that name only the URL's origin."""
    if _state.provider is None:
        return transport
    from opentelemetry.instrumentation.httpx import AsyncOpenTelemetryTransport

    return AsyncOpenTelemetryTransport(
        transport,
        tracer_provider=_state.provider,
        meter_provider=_no_meters(),
        request_hook=_origin_only,
    )


async def _origin_only(span: Span, request: Any) -> None:
    # A tenant's URL may hold its own secret in the path or the query (many chat and
    # automation services issue such URLs); the delivery's span names the endpoint by id.
    url = httpx.URL(str(request.url))
    origin = str(url.copy_with(path="/", query=None, fragment=None))
    for name in ("http.url", "url.full"):
        span.set_attribute(name, origin)


def _scrub_url(span: Span, scope: dict[str, Any]) -> None:
    if not span.is_recording() or "/hosted/" not in scope.get("path", ""):
        return
    attributes: Mapping[str, Any] = getattr(span, "attributes", None) or {}
    for name in _URL_ATTRIBUTES:
        value = attributes.get(name)
        if isinstance(value, str):
            span.set_attribute(name, _HOSTED_TOKEN.sub(r"\1{token}", value))


class _RequestAttributes:
    """The request id on the request's span. This runs outside RequestIdMiddleware, which
    leaves the id in the scope, and inside the instrumentation's middleware, whose span is
    current here; that span ends with the response, so the id is set as the response starts."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        span = trace.get_current_span()

        async def send_noting_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                request_id = scope.get(_REQUEST_ID_SCOPE_KEY)
                if request_id:
                    span.set_attribute(REQUEST_ID, request_id)
            await send(message)

        await self.app(scope, receive, send_noting_id)


# -- context that rides with the outbox ------------------------------------------------


def current_context() -> dict[str, str] | None:
    """The current trace context as W3C headers, to store with a job; None when untraced."""
    if _state.provider is None or not trace.get_current_span().get_span_context().is_valid:
        return None
    carrier: dict[str, str] = {}
    _PROPAGATOR.inject(carrier)
    request_id = current_request_id.get()
    if request_id is not None:
        # Not W3C: the jobs' spans name the request that queued them (the propagator
        # ignores the key when it reads the context back).
        carrier[_STORED_REQUEST_ID] = request_id
    return carrier or None


def annotate_tenant(tenant_id: uuid.UUID | None) -> None:
    """The tenant on the current span (a request's, a job's), when it is known."""
    if _state.provider is not None and tenant_id is not None:
        trace.get_current_span().set_attribute(TENANT_ID, str(tenant_id))


_UNTRACED = nullcontext()


def job_span(
    kind: str,
    job_id: uuid.UUID,
    attempt: int,
    tenant_id: uuid.UUID | None,
    stored: Mapping[str, str] | None,
) -> AbstractContextManager[object]:
    """The span of one run of an outbox job, a child of the context it was queued in."""
    tracer = _state.tracer
    if tracer is None:
        return _UNTRACED
    attributes: dict[str, str | int] = {
        "job.kind": kind,
        "job.id": str(job_id),
        "job.attempt": attempt,
    }
    if tenant_id is not None:
        attributes[TENANT_ID] = str(tenant_id)
    if stored and _STORED_REQUEST_ID in stored:
        attributes[REQUEST_ID] = stored[_STORED_REQUEST_ID]
    return tracer.start_as_current_span(
        f"outbox.job {kind}",
        context=_PROPAGATOR.extract(stored) if stored else otel_context.Context(),
        kind=SpanKind.CONSUMER,
        attributes=attributes,
    )


@contextmanager
def _delivery(
    tracer: Tracer, stored: Mapping[str, str] | None, attributes: dict[str, str]
) -> Iterator[Span]:
    running = trace.get_current_span().get_span_context()
    # Parented on the transaction that recorded the event; linked to the dispatch job's run,
    # which may belong to another trace (one run sends many events' deliveries).
    links = [Link(running)] if running.is_valid else None
    parent = _PROPAGATOR.extract(stored) if stored else None
    with tracer.start_as_current_span(
        "webhook.deliver", context=parent, kind=SpanKind.CLIENT, attributes=attributes, links=links
    ) as span:
        yield span


def delivery_span(
    stored: Mapping[str, str] | None,
    *,
    endpoint_id: uuid.UUID,
    event_type: str,
    delivery_id: uuid.UUID,
    tenant_id: uuid.UUID,
) -> AbstractContextManager[Span | None]:
    tracer = _state.tracer
    if tracer is None:
        return nullcontext()
    attributes = {
        "webhook.endpoint_id": str(endpoint_id),
        "webhook.event_type": event_type,
        "webhook.delivery_id": str(delivery_id),
        TENANT_ID: str(tenant_id),
    }
    if stored and _STORED_REQUEST_ID in stored:
        attributes[REQUEST_ID] = stored[_STORED_REQUEST_ID]
    return _delivery(tracer, stored, attributes)


def delivery_outcome(span: Span | None, status: int | None, error: str | None) -> None:
    if span is None:
        return
    if status is not None:
        span.set_attribute("http.response.status_code", status)
    if error is not None or status is None or status >= 300:
        span.set_status(Status(StatusCode.ERROR, error))


def untraced() -> AbstractContextManager[object]:
    """No spans for what runs inside (the worker's polling): off the trace of any job."""
    if _state.provider is None:
        return _UNTRACED
    from opentelemetry.instrumentation.utils import suppress_instrumentation

    return suppress_instrumentation()
