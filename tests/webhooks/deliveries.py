"""Helpers of the delivery tests: endpoints and events written as their owners write them,
a worker that runs the real dispatch job, and reads of what it recorded."""

import asyncio
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import Row, select

from tenvoice.config import Settings
from tenvoice.events.models import Event
from tenvoice.handlers import EVENT_HANDLERS, JOB_HANDLERS
from tenvoice.platform.db import Database, utcnow
from tenvoice.platform.ids import uuid7
from tenvoice.platform.worker import Worker
from tenvoice.webhooks import fanout
from tenvoice.webhooks.models import (
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookSubscription,
)
from tenvoice.webhooks.secrets import SecretBox, new_secret
from tenvoice.webhooks.ssrf import Resolver
from tests.conftest import SECRETS_KEY

# Short waits between attempts, so that eight attempts take about a second.
SCHEDULE = (0.05, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1)


def delivery_settings(settings: Settings, **overrides: Any) -> Settings:
    return settings.model_copy(
        update={
            "webhook_allow_private": True,
            "webhook_retry_schedule": SCHEDULE,
            "worker_poll_seconds": 0.01,
            **overrides,
        }
    )


@dataclass(frozen=True)
class Endpoint:
    id: uuid.UUID
    tenant_id: uuid.UUID
    url: str
    secret: str


async def add_endpoint(
    db: Database,
    tenant_id: uuid.UUID | str,
    url: str,
    *,
    # Not "*": a test's endpoint disabled would fan its webhook_endpoint.disabled out to the
    # test's other endpoints.
    patterns: Sequence[str] = ("invoice.*",),
    previous_secret: str | None = None,
    previous_expires_at: datetime | None = None,
    **fields: Any,
) -> Endpoint:
    """An endpoint as the endpoints API saves it: its secret sealed, a subscription per
    pattern."""
    tenant_id = uuid.UUID(str(tenant_id))
    endpoint_id = uuid7()
    secret = new_secret()
    box = SecretBox(SECRETS_KEY)
    now = utcnow()
    previous = previous_secret and box.seal(previous_secret, tenant_id, endpoint_id)
    async with db.write(tenant_id) as session:
        session.add(
            WebhookEndpoint(
                id=endpoint_id,
                url=url,
                enabled_events=list(patterns),
                metadata_={},
                secret=box.seal(secret, tenant_id, endpoint_id),
                previous_secret=previous,
                previous_secret_expires_at=previous_expires_at,
                created_at=now,
                updated_at=now,
                **{"failed_attempts": 0, **fields},
            )
        )
        await session.flush()
        session.add_all(WebhookSubscription(endpoint_id=endpoint_id, pattern=p) for p in patterns)
        await session.commit()
    return Endpoint(endpoint_id, tenant_id, url, secret)


async def publish(
    db: Database,
    tenant_id: uuid.UUID | str,
    endpoints: Sequence[Endpoint],
    *,
    count: int = 1,
    event_type: str = "invoice.paid",
) -> list[uuid.UUID]:
    """`count` events in one transaction, each with a delivery per endpoint and a dispatch
    job per endpoint: what the event-log writer and its fan-out commit with a change."""
    tenant_id = uuid.UUID(str(tenant_id))
    ids = []
    async with db.write(tenant_id) as session:
        for n in range(count):
            now = utcnow()
            event_id = uuid7()
            entity_id = uuid.uuid4()
            session.add(
                Event(
                    id=event_id,
                    event_type=event_type,
                    entity_type=event_type.split(".")[0],
                    entity_id=entity_id,
                    stream_id=entity_id,
                    occurred_at=now,
                    request_id=None,
                    actor_type="system",
                    actor_id=None,
                    data={"object": {"id": str(entity_id), "n": n, "name": "Zoë Ωmega"}},
                )
            )
            for endpoint in endpoints:
                session.add(
                    WebhookDelivery(
                        endpoint_id=endpoint.id,
                        event_id=event_id,
                        event_type=event_type,
                        status="pending",
                        attempts=0,
                        next_attempt_at=now,
                        created_at=now,
                        updated_at=now,
                    )
                )
            ids.append(event_id)
        for endpoint in endpoints:
            fanout.wake(session, tenant_id, endpoint.id)
        await session.commit()
    return ids


@asynccontextmanager
async def delivery_worker(
    db: Database, settings: Settings, *, resolver: Resolver | None = None
) -> AsyncIterator[Worker]:
    worker = Worker(db, settings, JOB_HANDLERS, EVENT_HANDLERS)
    if resolver is not None:
        worker.context = replace(worker.context, resolver=resolver)
    try:
        yield worker
    finally:
        await worker.close()


@asynccontextmanager
async def running(worker: Worker) -> AsyncIterator[Worker]:
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    try:
        yield worker
    finally:
        stop.set()
        await task


async def deliveries(db: Database, endpoint: Endpoint) -> list[Row[Any]]:
    """The endpoint's deliveries in event order."""
    async with db.read(endpoint.tenant_id) as session:
        rows = await session.execute(
            select(WebhookDelivery.__table__)
            .where(WebhookDelivery.endpoint_id == endpoint.id)
            .order_by(WebhookDelivery.event_id)
        )
        return list(rows)


async def attempts(db: Database, endpoint: Endpoint, delivery_id: uuid.UUID) -> list[Row[Any]]:
    async with db.read(endpoint.tenant_id) as session:
        rows = await session.execute(
            select(WebhookAttempt.__table__)
            .where(WebhookAttempt.delivery_id == delivery_id)
            .order_by(WebhookAttempt.number)
        )
        return list(rows)


async def endpoint_row(db: Database, endpoint: Endpoint) -> Row[Any]:
    async with db.read(endpoint.tenant_id) as session:
        rows = await session.execute(
            select(WebhookEndpoint.__table__).where(WebhookEndpoint.id == endpoint.id)
        )
        return rows.one()


async def events_of(db: Database, tenant_id: uuid.UUID, event_type: str) -> list[Row[Any]]:
    async with db.read(tenant_id) as session:
        rows = await session.execute(
            select(Event.__table__)
            .where(Event.tenant_id == tenant_id, Event.event_type == event_type)
            .order_by(Event.id)
        )
        return list(rows)
