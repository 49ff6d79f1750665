"""Tracing off, the default: no provider, no instrumentation, no context stored or sent."""

import uuid

from fastapi import FastAPI
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from sqlalchemy import func, select

from tenvoice.config import Settings
from tenvoice.platform import tracing
from tenvoice.platform.db import Database
from tenvoice.platform.messages import EventHandlers
from tenvoice.platform.outbox import OutboxJob
from tenvoice.webhooks.models import WebhookDelivery
from tests.live import live_server
from tests.platform.tracing_support import pay_an_invoice
from tests.webhooks.deliveries import delivery_settings
from tests.webhooks.receivers import Receiver, serving


def test_nothing_is_set_up_without_the_environment_asking(app: FastAPI) -> None:
    assert not tracing.active()
    assert not isinstance(trace.get_tracer_provider(), TracerProvider)
    assert not getattr(app, "_is_instrumented_by_opentelemetry", False)


def test_the_environment_turns_tracing_on() -> None:
    assert not tracing.enabled_by_environment({})
    assert tracing.enabled_by_environment({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://x:4318"})
    assert tracing.enabled_by_environment({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://x"})
    assert tracing.enabled_by_environment({"OTEL_TRACES_EXPORTER": "otlp"})
    assert not tracing.enabled_by_environment(
        {"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://x:4318"}
    )


async def test_a_payment_stores_no_trace_context_and_sends_no_traceparent(
    settings: Settings, db: Database, event_handlers: EventHandlers
) -> None:
    settings = delivery_settings(settings)
    async with serving(Receiver()) as receiver, live_server(settings, db, event_handlers) as live:
        flow = await pay_an_invoice(live, receiver)

    tenant_id = uuid.UUID(flow.tenant.id)
    async with db.lookup() as connection:
        jobs = select(func.count()).where(OutboxJob.tenant_id == tenant_id)
        assert (await connection.scalar(jobs) or 0) >= 2  # the charge and the dispatch, at least
        assert await connection.scalar(jobs.where(OutboxJob.trace_context.is_not(None))) == 0
    async with db.read(tenant_id) as session:
        deliveries = select(func.count()).select_from(WebhookDelivery)
        assert await session.scalar(deliveries) == 1
        traced = deliveries.where(WebhookDelivery.trace_context.is_not(None))
        assert await session.scalar(traced) == 0
    (received,) = receiver.received
    assert "traceparent" not in received.headers
    assert not tracing.active()
