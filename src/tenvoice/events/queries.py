"""The read side of the event log: the Events API and the timelines, which are views of it.

Every read goes through `present`, so an event looks the same wherever it is read.
"""

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, false, literal, select, tuple_, union_all
from sqlalchemy.orm import aliased

from tenvoice.events.catalog import EVENT_TYPES, EVERYTHING, TEST_EVENT_TYPE, is_known_pattern
from tenvoice.events.errors import EventNotFound
from tenvoice.events.models import Event
from tenvoice.events.schemas import EventOut, Timeline
from tenvoice.invoices.links import HostedLinks
from tenvoice.platform.db import ReadSession
from tenvoice.platform.errors import ValidationFailed
from tenvoice.platform.pagination import (
    CursorPage,
    PageRequest,
    Sort,
    SortColumn,
    decode_cursor,
    paginate,
    sorts,
)
from tenvoice.platform.tenancy import owned_by_tenant, tenant_reads

T = Event
# The types the log can hold: what endpoints subscribe to, and the test event an endpoint
# can be sent on request.
LISTED_TYPES = EVENT_TYPES | {TEST_EVENT_TYPE}
ENTITY_TYPES = frozenset(event_type.split(".", 1)[0] for event_type in LISTED_TYPES)
EventWire = dict[str, Any]

_COLUMNS = (
    T.tenant_id,
    T.id,
    T.event_type,
    T.entity_type,
    T.entity_id,
    T.occurred_at,
    T.request_id,
    T.actor_type,
    T.actor_id,
    T.data,
)
_SORT_NAME = "-occurredAt"
NEWEST_FIRST = sorts({"occurredAt": SortColumn(T.occurred_at, "datetime")}, T.id)[_SORT_NAME]


@dataclass(frozen=True, slots=True)
class EventFilters:
    # Exact types, prefixes already expanded (event_types); empty: every type.
    event_types: tuple[str, ...] = ()
    entity_type: str | None = None
    entity_id: uuid.UUID | None = None
    occurred_from: datetime | None = None
    occurred_to: datetime | None = None


def event_types(patterns: Iterable[str]) -> tuple[str, ...]:
    """The exact types `type=invoice.paid&type=customer.*` asks for; () when `*` is among them.

    A prefix becomes the catalog's types under it rather than `LIKE 'invoice.%'`: each exact
    type is a range of ix_events_tenant_type already in (occurred_at, id) order, so a list of
    them merges into one newest-first page without sorting (`_merged`), while a LIKE range
    spans several types whose rows the database would have to read in full and sort.
    """
    wanted: dict[str, None] = {}
    for pattern in patterns:
        if pattern == EVERYTHING:
            return ()
        if not (pattern == TEST_EVENT_TYPE or is_known_pattern(pattern)):
            raise ValidationFailed("type", f"unknown event type or prefix: {pattern[:80]}")
        if pattern.endswith(".*"):
            prefix = pattern.removesuffix("*")
            wanted.update(dict.fromkeys(sorted(t for t in LISTED_TYPES if t.startswith(prefix))))
        else:
            wanted[pattern] = None
    return tuple(wanted)


def linked_data(row: Any, links: HostedLinks | None) -> dict[str, Any]:
    """The event's data; an invoice's snapshot gets its public link back.

    Snapshots are stored with `hostedUrl: null` so that the log never holds a link token (a
    bearer secret for the customer's page); reading fills it in as GET /api/invoices/{id}
    does, for every invoice that has been finalized. Without `links` (a worker that does not
    know where customers reach the service) it stays null.
    """
    data: dict[str, Any] = row.data
    snapshot = data.get("object")
    if (
        links is not None
        and row.entity_type == "invoice"
        and isinstance(snapshot, dict)
        and snapshot.get("finalizedAt") is not None
    ):
        hosted_url = links.url(row.tenant_id, row.entity_id)
        data = {**data, "object": {**snapshot, "hostedUrl": hosted_url}}
    return data


def present(row: Any, links: HostedLinks) -> EventWire:
    """An event row in its wire form."""
    data = linked_data(row, links)
    return {
        "id": str(row.id),
        "eventType": row.event_type,
        "entityType": row.entity_type,
        "entityId": str(row.entity_id),
        "occurredAt": row.occurred_at,
        "requestId": row.request_id,
        "actor": {"type": row.actor_type, "id": row.actor_id},
        "data": data,
    }


# Reads run past the ORM (TenantReads), so each names its tenant filter itself.
_TENANT_EVENTS = select(*_COLUMNS).where(owned_by_tenant(T))


async def get_event(session: ReadSession, event_id: uuid.UUID, links: HostedLinks) -> EventWire:
    reads = await tenant_reads(session)
    row = (await reads.execute(_TENANT_EVENTS.where(T.id == event_id))).first()
    if row is None:
        raise EventNotFound(f"No event {event_id}.")
    return present(row, links)


async def list_events(
    session: ReadSession, filters: EventFilters, page: PageRequest, links: HostedLinks
) -> dict[str, Any]:
    """A page, newest first, in its wire form (Page[EventOut] documents it)."""
    reads = await tenant_reads(session)
    statement, sort = _matching(filters, page)
    result = await paginate(reads, statement, sort, page)
    return {
        "data": [present(row, links) for row in result.rows],
        "pagination": result.pagination.model_dump(by_alias=True),
    }


async def stream(session: ReadSession, stream_id: uuid.UUID, links: HostedLinks) -> Timeline:
    """Every event of one timeline (an invoice's, payments included, or a customer's),
    oldest first."""
    reads = await tenant_reads(session)
    rows = await reads.execute(
        _TENANT_EVENTS.where(T.stream_id == stream_id).order_by(T.occurred_at, T.id)
    )
    return Timeline(data=[EventOut.model_validate(present(row, links)) for row in rows])


def _matching(f: EventFilters, page: PageRequest) -> tuple[Select[Any], Sort]:
    conditions: list[ColumnElement[bool]] = [owned_by_tenant(T)]
    if f.entity_type is not None:
        conditions.append(T.entity_type == f.entity_type)
    if f.entity_id is not None:
        conditions.append(T.entity_id == f.entity_id)
    if f.occurred_from is not None:
        conditions.append(T.occurred_at >= f.occurred_from)
    if f.occurred_to is not None:
        conditions.append(T.occurred_at <= f.occurred_to)
    types = f.event_types
    if f.entity_type is not None and f.entity_id is None:
        # An entity's event types are named after it (`invoice.*` for invoices; the tests
        # check every event written): read as those types' ranges, a rare entity type is
        # found without walking the whole log. The entity_type condition stays all the same.
        own = event_types([f"{f.entity_type}.*"])
        types = tuple(t for t in types if t in own) if types else own
        if not types:
            return select(*_COLUMNS).where(false()), NEWEST_FIRST
    plain = select(*_COLUMNS).where(*conditions)
    # One entity has few events (ix_events_tenant_entity finds them all): its types are a
    # plain filter. So is a count, which reads every matching row whatever the plan.
    if len(types) <= 1 or f.entity_id is not None or page.include_total:
        if len(types) == 1:
            plain = plain.where(T.event_type == types[0])
        elif types:
            plain = plain.where(T.event_type.in_(types))
        return plain, NEWEST_FIRST
    return _merged(plain, types, page)


def _merged(
    plain: Select[Any], types: tuple[str, ...], page: PageRequest
) -> tuple[Select[Any], Sort]:
    """Several types: each its own range of ix_events_tenant_type, newest first and cut
    at what the page can need, merged into one (UNION ALL, ordered and limited outside).

    PostgreSQL plans this as a Merge Append of backward index scans that each stop after
    a page, so a page costs the same at any depth, as it does for one type. The ranges are
    cut explicitly because PostgreSQL neither orders nor limits the arms of a UNION ALL by
    itself when they carry conditions of their own (they are planned apart, as subqueries).
    """
    if isinstance(page, CursorPage):
        enough = page.limit + 1
        if page.cursor is not None:
            moment, last_id = decode_cursor(page.cursor, NEWEST_FIRST)
            mark = tuple_(literal(moment, T.occurred_at.type), literal(last_id, T.id.type))
            # Inside each arm, where the index can use it (paginate repeats it outside).
            plain = plain.where(tuple_(T.occurred_at, T.id) < mark)
    else:
        enough = page.page * page.page_size + 1
    arms = [
        # Each arm a subquery of its own: SQLite takes no ORDER BY or LIMIT on a bare arm.
        select(
            plain.where(T.event_type == t)
            .order_by(*NEWEST_FIRST.order_by())
            .limit(enough)
            .subquery()
        )
        for t in types
    ]
    merged = aliased(Event, union_all(*arms).subquery("events"))
    sort = sorts({"occurredAt": SortColumn(merged.occurred_at, "datetime")}, merged.id)
    return select(*(getattr(merged, column.key) for column in _COLUMNS)), sort[_SORT_NAME]
