"""Writes a command's events to the log and fans each out to the tenant's endpoints, in
the command's transaction: a delivery per enabled endpoint subscribed to the event (by its
type, its `prefix.*` or `*`), and a dispatch job per endpoint that got one. Both carry the
transaction's trace context when it is traced (platform/tracing.py), so that each delivery
attempt joins the trace of the change that caused it.

On PostgreSQL the three inserts are one statement (data-modifying CTEs), so logging an event
costs the same single round trip whether or not the tenant has endpoints. SQLite has no
data-modifying CTEs; it runs in-process, where a few statements cost next to nothing.
"""

import uuid
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, and_, insert, select, text
from sqlalchemy.sql.expression import ColumnElement

from tenvoice.events.catalog import EVERYTHING, TEST_EVENT_TYPE, prefix_pattern
from tenvoice.events.models import Event
from tenvoice.platform import tracing
from tenvoice.platform.db import json_text, utcnow
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
    traced = tracing.current_context()
    if (await uow.session.connection()).dialect.name == "postgresql":
        await uow.session.execute(_IN_ONE_STATEMENT, _columns(rows, now, traced))
        return
    await uow.session.execute(insert(EVENTS), rows)
    await _fan_out_here(uow, rows, now, traced)


# The events as arrays, one per column: one statement text whatever their number, so it is
# prepared and compiled once (a multi-row VALUES would be a new statement for each count).
# Only module constants are formatted into the text; every value is a bound parameter.
_IN_ONE_STATEMENT = text(
    f"""
WITH logged AS (
    INSERT INTO events (tenant_id, id, event_type, entity_type, entity_id, stream_id,
                        occurred_at, request_id, actor_type, actor_id, data)
    SELECT :tenant_id, e.id, e.event_type, e.entity_type, e.entity_id, e.stream_id,
           e.occurred_at, e.request_id, e.actor_type, e.actor_id, CAST(e.data AS jsonb)
    FROM unnest(CAST(:ids AS uuid[]), CAST(:event_types AS varchar[]),
                CAST(:entity_types AS varchar[]), CAST(:entity_ids AS uuid[]),
                CAST(:stream_ids AS uuid[]), CAST(:occurred_at AS timestamptz[]),
                CAST(:request_ids AS varchar[]), CAST(:actor_types AS varchar[]),
                CAST(:actor_ids AS varchar[]), CAST(:data AS text[]))
         AS e(id, event_type, entity_type, entity_id, stream_id, occurred_at, request_id,
              actor_type, actor_id, data)
    RETURNING id, event_type
), matched AS (
    -- DISTINCT: an endpoint may match an event through two entries ("*" and the type).
    SELECT DISTINCT logged.id AS event_id, logged.event_type, s.endpoint_id
    FROM logged
    JOIN webhook_subscriptions s
      ON s.tenant_id = :tenant_id
     AND s.pattern IN (logged.event_type, '{EVERYTHING}',
                       split_part(logged.event_type, '.', 1) || '.*')
    JOIN webhook_endpoints w
      ON w.tenant_id = s.tenant_id AND w.id = s.endpoint_id
     AND w.status = '{EndpointStatus.ENABLED.value}'
    WHERE logged.event_type <> '{TEST_EVENT_TYPE}'
), queued AS (
    INSERT INTO webhook_deliveries (tenant_id, id, endpoint_id, event_id, event_type, status,
                                    attempts, next_attempt_at, trace_context, created_at,
                                    updated_at)
    SELECT :tenant_id, gen_random_uuid(), endpoint_id, event_id, event_type,
           '{DeliveryStatus.PENDING.value}', 0, :now, CAST(CAST(:trace AS text) AS jsonb),
           :now, :now
    FROM matched
    RETURNING endpoint_id
)
INSERT INTO outbox_jobs (id, tenant_id, kind, dedupe_key, payload, status, attempts,
                         run_after, trace_context, created_at, updated_at)
SELECT gen_random_uuid(), :tenant_id, '{DISPATCH}', '{DISPATCH}:' || endpoint_id,
       jsonb_build_object('endpointId', CAST(endpoint_id AS text)),
       '{JobStatus.PENDING.value}', 0, :now, CAST(CAST(:trace AS text) AS jsonb), :now, :now
FROM (SELECT DISTINCT endpoint_id FROM queued) AS woken
"""  # noqa: S608
)


def _columns(
    rows: list[dict[str, Any]], now: datetime, traced: dict[str, str] | None
) -> dict[str, Any]:
    return {
        "tenant_id": rows[0]["tenant_id"],
        "now": now,
        "trace": None if traced is None else json_text(traced),
        "ids": [row["id"] for row in rows],
        "event_types": [row["event_type"] for row in rows],
        "entity_types": [row["entity_type"] for row in rows],
        "entity_ids": [row["entity_id"] for row in rows],
        "stream_ids": [row["stream_id"] for row in rows],
        "occurred_at": [row["occurred_at"] for row in rows],
        "request_ids": [row["request_id"] for row in rows],
        "actor_types": [row["actor_type"] for row in rows],
        "actor_ids": [row["actor_id"] for row in rows],
        "data": [json_text(row["data"]) for row in rows],
    }


def _enabled_endpoint() -> ColumnElement[bool]:
    return and_(
        ENDPOINTS.c.tenant_id == SUBSCRIPTIONS.c.tenant_id,
        ENDPOINTS.c.id == SUBSCRIPTIONS.c.endpoint_id,
        ENDPOINTS.c.status == EndpointStatus.ENABLED.value,
    )


async def _fan_out_here(
    uow: UnitOfWork, rows: list[dict[str, Any]], now: datetime, traced: dict[str, str] | None
) -> None:
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
                    **_trace_column(traced),
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
                **_trace_column(traced),
            }
            for endpoint in woken
        ],
    )


def _trace_column(traced: dict[str, str] | None) -> dict[str, Any]:
    # Left out untraced: a None written to a JSON column would be JSON null, not SQL NULL.
    return {} if traced is None else {"trace_context": traced}
