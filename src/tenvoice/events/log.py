"""Writes a command's events to the log and fans each out to the tenant's endpoints, in
the command's transaction: a delivery per enabled endpoint subscribed to the event (by its
type, its `prefix.*` or `*`), and a dispatch job per endpoint that got one.

On PostgreSQL the three inserts are one statement (data-modifying CTEs), so logging an event
costs the same single round trip whether or not the tenant has endpoints. SQLite has no
data-modifying CTEs; it runs in-process, where a few statements cost next to nothing.
"""

import uuid
from datetime import datetime
from typing import Any, cast

from sqlalchemy import String, Table, Uuid, and_, func, insert, literal, or_, select
from sqlalchemy import cast as sql_cast
from sqlalchemy.sql.expression import ColumnElement

from tenvoice.events.catalog import EVERYTHING, TEST_EVENT_TYPE, prefix_pattern
from tenvoice.events.models import Event
from tenvoice.platform.db import utcnow
from tenvoice.platform.ids import uuid7
from tenvoice.platform.outbox import JobStatus, OutboxJob
from tenvoice.platform.uow import UnitOfWork
from tenvoice.webhooks.fanout import DISPATCH, dispatch_key
from tenvoice.webhooks.models import (
    DeliveryStatus,
    EndpointStatus,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookSubscription,
)

EVENTS = cast(Table, Event.__table__)
SUBSCRIPTIONS = cast(Table, WebhookSubscription.__table__)
ENDPOINTS = cast(Table, WebhookEndpoint.__table__)
DELIVERIES = cast(Table, WebhookDelivery.__table__)
JOBS = cast(Table, OutboxJob.__table__)


async def write_events(uow: UnitOfWork, rows: list[dict[str, Any]]) -> None:
    now = utcnow()
    if (await uow.session.connection()).dialect.name == "postgresql":
        await uow.session.execute(_in_one_statement(rows, now))
        return
    await uow.session.execute(insert(EVENTS), rows)
    await _fan_out_here(uow, rows, now)


def _in_one_statement(rows: list[dict[str, Any]], now: datetime) -> Any:
    tenant = literal(rows[0]["tenant_id"], Uuid())
    at = literal(now, DELIVERIES.c.created_at.type)
    logged = insert(EVENTS).values(rows).returning(EVENTS.c.id, EVENTS.c.event_type).cte("logged")
    matched = (
        select(
            logged.c.id.label("event_id"),
            logged.c.event_type,
            SUBSCRIPTIONS.c.endpoint_id,
        )
        .join_from(logged, SUBSCRIPTIONS, _subscribed(logged.c.event_type, tenant))
        .join(ENDPOINTS, _enabled_endpoint())
        .where(logged.c.event_type != TEST_EVENT_TYPE)
        # An endpoint may match an event through two entries ("*" and the type itself).
        .distinct()
        .subquery("matched")
    )
    queued = (
        insert(DELIVERIES)
        .from_select(
            [
                "tenant_id",
                "id",
                "endpoint_id",
                "event_id",
                "event_type",
                "status",
                "attempts",
                "next_attempt_at",
                "created_at",
                "updated_at",
            ],
            select(
                tenant,
                func.gen_random_uuid(),
                matched.c.endpoint_id,
                matched.c.event_id,
                matched.c.event_type,
                literal(DeliveryStatus.PENDING.value),
                literal(0),
                at,
                at,
                at,
            ),
        )
        .returning(DELIVERIES.c.endpoint_id)
        .cte("queued")
    )
    woken = select(queued.c.endpoint_id).distinct().subquery("woken")
    endpoint_text = sql_cast(woken.c.endpoint_id, String)
    return insert(JOBS).from_select(
        [
            "id",
            "tenant_id",
            "kind",
            "dedupe_key",
            "payload",
            "status",
            "attempts",
            "run_after",
            "created_at",
            "updated_at",
        ],
        select(
            func.gen_random_uuid(),
            tenant,
            literal(DISPATCH),
            literal(DISPATCH + ":") + endpoint_text,
            func.jsonb_build_object("endpointId", endpoint_text),
            literal(JobStatus.PENDING.value),
            literal(0),
            at,
            at,
            at,
        ),
    )


def _subscribed(event_type: Any, tenant: Any) -> ColumnElement[bool]:
    pattern = SUBSCRIPTIONS.c.pattern
    return and_(
        SUBSCRIPTIONS.c.tenant_id == tenant,
        or_(
            pattern == event_type,
            pattern == EVERYTHING,
            pattern == func.split_part(event_type, ".", 1) + ".*",
        ),
    )


def _enabled_endpoint() -> ColumnElement[bool]:
    return and_(
        ENDPOINTS.c.tenant_id == SUBSCRIPTIONS.c.tenant_id,
        ENDPOINTS.c.id == SUBSCRIPTIONS.c.endpoint_id,
        ENDPOINTS.c.status == EndpointStatus.ENABLED.value,
    )


async def _fan_out_here(uow: UnitOfWork, rows: list[dict[str, Any]], now: datetime) -> None:
    fanned = [row for row in rows if row["event_type"] != TEST_EVENT_TYPE]
    if not fanned:
        return
    tenant: uuid.UUID = rows[0]["tenant_id"]
    patterns = {EVERYTHING}
    for row in fanned:
        patterns |= {row["event_type"], prefix_pattern(row["event_type"])}
    subscriptions = (
        await uow.session.execute(
            select(SUBSCRIPTIONS.c.endpoint_id, SUBSCRIPTIONS.c.pattern)
            .join(ENDPOINTS, _enabled_endpoint())
            .where(SUBSCRIPTIONS.c.tenant_id == tenant, SUBSCRIPTIONS.c.pattern.in_(patterns))
        )
    ).all()
    if not subscriptions:
        return
    deliveries = []
    for row in fanned:
        wanted = {row["event_type"], prefix_pattern(row["event_type"]), EVERYTHING}
        for endpoint in sorted({s.endpoint_id for s in subscriptions if s.pattern in wanted}):
            deliveries.append(
                {
                    "tenant_id": tenant,
                    "id": uuid7(),
                    "endpoint_id": endpoint,
                    "event_id": row["id"],
                    "event_type": row["event_type"],
                    "status": DeliveryStatus.PENDING.value,
                    "attempts": 0,
                    "next_attempt_at": now,
                    "created_at": now,
                    "updated_at": now,
                }
            )
    if not deliveries:
        return
    await uow.session.execute(insert(DELIVERIES), deliveries)
    woken = sorted({delivery["endpoint_id"] for delivery in deliveries})
    await uow.session.execute(
        insert(JOBS),
        [
            {
                "id": uuid7(),
                "tenant_id": tenant,
                "kind": DISPATCH,
                "dedupe_key": dispatch_key(endpoint),
                "payload": {"endpointId": str(endpoint)},
                "status": JobStatus.PENDING.value,
                "attempts": 0,
                "run_after": now,
                "created_at": now,
                "updated_at": now,
            }
            for endpoint in woken
        ],
    )
