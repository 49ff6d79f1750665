"""Tracing on (an in-memory exporter): a payment is one trace from its request, through the
charge job, the gateway's webhook over real HTTP and the invoice update, to the outbound
webhook delivery; every span names its tenant and none carries a secret."""

import uuid
from collections.abc import Iterator

import httpx
import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from sqlalchemy import select

from tenvoice.config import Settings
from tenvoice.platform import tracing
from tenvoice.platform.db import Database
from tenvoice.platform.messages import EventHandlers
from tenvoice.platform.outbox import OutboxJob
from tenvoice.webhooks.models import WebhookDelivery
from tests.conftest import ADMIN_KEY, SECRETS_KEY, WEBHOOK_SECRET
from tests.live import eventually, live_server
from tests.platform.tracing_support import (
    ADMIN,
    Flow,
    children,
    leaked,
    named,
    one,
    pay_an_invoice,
    trace_id,
)
from tests.webhooks.deliveries import delivery_settings
from tests.webhooks.receivers import Receiver, serving, verified

# A client's own trace (W3C traceparent), which the service continues.
CLIENT_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
CLIENT_TRACEPARENT = f"00-{CLIENT_TRACE}-00f067aa0ba902b7-01"


@pytest.fixture(autouse=True)
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = tracing.install_in_memory()
    yield exporter
    tracing.uninstall()


@pytest.fixture
def settings(settings: Settings) -> Settings:
    # The receiver listens on loopback over plain HTTP.
    return delivery_settings(settings)


async def test_a_payment_is_one_trace_from_request_to_outbound_webhook(
    settings: Settings, db: Database, event_handlers: EventHandlers, spans: InMemorySpanExporter
) -> None:
    async with serving(Receiver()) as receiver, live_server(settings, db, event_handlers) as live:
        flow = await pay_an_invoice(live, receiver)
        hosted = await live.client.get(flow.invoice["hostedUrl"])
        assert hosted.status_code == 200
        await eventually(lambda: _finished(spans, "webhook.deliver"))

    finished = list(spans.get_finished_spans())
    request = one(finished, "POST /api/payments")
    trace = trace_id(request)
    in_trace = [span for span in finished if trace_id(span) == trace]

    assert request.kind == SpanKind.SERVER
    assert request.parent is None  # the client sent no traceparent: the trace starts here
    assert (request.attributes or {})[tracing.TENANT_ID] == flow.tenant.id
    assert (request.attributes or {})[tracing.REQUEST_ID] == flow.payment.headers["x-request-id"]
    assert _db_spans(in_trace, request), "the payment's statements are within its request"

    charge = one(in_trace, "outbox.job gateway.charge")
    assert charge.kind == SpanKind.CONSUMER
    assert _parent(charge) == _id(request), "queued in the request's transaction"
    assert _attributes(charge, "job.kind", "job.attempt", "tenant.id", tracing.REQUEST_ID) == {
        "job.kind": "gateway.charge",
        "job.attempt": 1,
        "tenant.id": flow.tenant.id,
        tracing.REQUEST_ID: flow.payment.headers["x-request-id"],
    }
    uuid.UUID(str((charge.attributes or {})["job.id"]))

    (callback,) = [s for s in children(in_trace, charge) if s.kind == SpanKind.CLIENT]
    assert str((callback.attributes or {}).get("http.url")).endswith("/api/webhooks/payments")
    gateway_webhook = one(in_trace, "POST /api/webhooks/payments")
    assert gateway_webhook.kind == SpanKind.SERVER
    assert _parent(gateway_webhook) == _id(callback), "the gateway's traceparent is honoured"
    assert (gateway_webhook.attributes or {})[tracing.TENANT_ID] == flow.tenant.id
    assert _db_spans(in_trace, gateway_webhook), "the invoice update is within the webhook"

    deliver = one(in_trace, "webhook.deliver")
    assert _parent(deliver) == _id(gateway_webhook), "parented on the transaction of its event"
    (delivery_id,) = await _delivery_ids(db, flow)
    assert _attributes(deliver, *_DELIVERY_ATTRIBUTES) == {
        "webhook.endpoint_id": flow.endpoint["id"],
        "webhook.event_type": "invoice.paid",
        "webhook.delivery_id": str(delivery_id),
        "http.response.status_code": 204,
        "tenant.id": flow.tenant.id,
        tracing.REQUEST_ID: (gateway_webhook.attributes or {})[tracing.REQUEST_ID],
    }
    (post,) = [s for s in children(in_trace, deliver) if s.kind == SpanKind.CLIENT]
    # A tenant's URL may carry its own secret: the span names the origin only.
    assert str((post.attributes or {})["http.url"]).endswith(
        ":" + receiver.base_url.split(":")[-1] + "/"
    )
    (received,) = receiver.received
    # The receiver's request was sent inside the delivery's HTTP client span.
    _, sent_trace, sent_parent, _ = received.headers["traceparent"].split("-")
    assert (sent_trace, sent_parent) == (f"{trace:032x}", f"{_id(post):016x}")
    dispatch = one(in_trace, "outbox.job webhook.dispatch")
    assert _parent(dispatch) == _id(gateway_webhook)

    for span in (request, charge, gateway_webhook, deliver, dispatch):
        assert (span.attributes or {})[tracing.TENANT_ID] == flow.tenant.id, span.name
    assert verified(flow.endpoint["secret"], received)["type"] == "invoice.paid"
    hosted_span = one(finished, "GET /hosted/invoices/{token}")
    token = flow.invoice["hostedUrl"].rsplit("/", 1)[1]
    assert str((hosted_span.attributes or {}).get("http.target")).endswith("/{token}")
    secrets = [flow.tenant.key, ADMIN_KEY, WEBHOOK_SECRET, SECRETS_KEY, flow.endpoint["secret"]]
    assert leaked(finished, [*secrets, token]) == []


async def test_the_trace_context_is_kept_with_the_job_and_the_delivery(
    settings: Settings, db: Database, event_handlers: EventHandlers, spans: InMemorySpanExporter
) -> None:
    async with serving(Receiver()) as receiver, live_server(settings, db, event_handlers) as live:
        flow = await pay_an_invoice(live, receiver, traceparent=CLIENT_TRACEPARENT)

    async with db.lookup() as connection:
        stored = dict(
            (
                await connection.execute(
                    select(OutboxJob.kind, OutboxJob.trace_context).where(
                        OutboxJob.tenant_id == uuid.UUID(flow.tenant.id)
                    )
                )
            ).all()
        )
    # Every job was queued in a traced transaction; the payment's carry the client's trace.
    assert all(context and context["traceparent"] for context in stored.values()), stored
    for kind in ("gateway.charge", "webhook.dispatch"):
        assert CLIENT_TRACE in (stored[kind] or {})["traceparent"], kind
    async with db.read(uuid.UUID(flow.tenant.id)) as session:
        kept = (await session.scalars(select(WebhookDelivery.trace_context))).all()
    assert [CLIENT_TRACE in (context or {}).get("traceparent", "") for context in kept] == [True]
    request = one(spans.get_finished_spans(), "POST /api/payments")
    assert f"{trace_id(request):032x}" == CLIENT_TRACE, "the client's traceparent is honoured"


async def test_no_span_names_the_admin_key_or_the_tenant_key(
    client: httpx.AsyncClient, spans: InMemorySpanExporter
) -> None:
    response = await client.post("/api/tenants", json={"name": "Acme"}, headers=ADMIN)
    assert response.status_code == 201
    (tenant,) = named(spans.get_finished_spans(), "POST /api/tenants")
    assert (tenant.attributes or {}).get("http.status_code") == 201
    assert leaked(spans.get_finished_spans(), [ADMIN_KEY]) == []


_DELIVERY_ATTRIBUTES = (
    "webhook.endpoint_id",
    "webhook.event_type",
    "webhook.delivery_id",
    "http.response.status_code",
    "tenant.id",
    tracing.REQUEST_ID,
)


async def _finished(spans: InMemorySpanExporter, name: str) -> bool:
    return bool(named(spans.get_finished_spans(), name))


def _parent(span: ReadableSpan) -> int:
    """The id of the span's parent, to compare with `_id` of another."""
    assert span.parent is not None, span.name
    span_id: int = span.parent.span_id
    return span_id


def _id(span: ReadableSpan) -> int:
    assert span.context is not None
    span_id: int = span.context.span_id
    return span_id


def _attributes(span: ReadableSpan, *names: str) -> dict[str, object]:
    attributes = span.attributes or {}
    return {name: attributes.get(name) for name in names}


def _db_spans(spans: list[ReadableSpan], parent: ReadableSpan) -> list[ReadableSpan]:
    return [s for s in children(spans, parent) if "db.system" in (s.attributes or {})]


async def _delivery_ids(db: Database, flow: Flow) -> list[uuid.UUID]:
    async with db.read(uuid.UUID(flow.tenant.id)) as session:
        return list((await session.scalars(select(WebhookDelivery.id))).all())
