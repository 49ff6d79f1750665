from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, Query
from pydantic import WithJsonSchema

from tenvoice.api import Paging, PublicLinks, TenantReader
from tenvoice.events import queries
from tenvoice.events.schemas import EventOut, Timestamp
from tenvoice.platform.errors import ValidationFailed
from tenvoice.platform.http import WireJSON
from tenvoice.platform.pagination import Page
from tenvoice.platform.schemas import problem_responses

router = APIRouter(
    prefix="/api/events",
    tags=["events"],
    responses=problem_responses(400, 401, 403, 404, 422),
)

_PATTERNS = [
    *sorted(queries.LISTED_TYPES),
    *sorted({t.split(".", 1)[0] + ".*" for t in queries.LISTED_TYPES}),
    "*",
]
_ENTITY_TYPES = sorted(queries.ENTITY_TYPES)
_TYPE_DOC = (
    "Repeatable; an event type (`invoice.paid`), a prefix (`invoice.*`) or `*`. "
    "Comma-separated values are taken too. An unknown type or prefix is 422."
)


async def event_filters(
    event_type: Annotated[
        list[Annotated[str, WithJsonSchema({"type": "string", "enum": _PATTERNS})]] | None,
        Query(alias="type", max_length=50, description=_TYPE_DOC),
    ] = None,
    entity_type: Annotated[
        Annotated[str, WithJsonSchema({"type": "string", "enum": _ENTITY_TYPES})] | None,
        Query(alias="entityType"),
    ] = None,
    entity_id: Annotated[UUID | None, Query(alias="entityId")] = None,
    occurred_from: Annotated[
        Timestamp | None, Query(alias="occurredFrom", description="Inclusive; RFC 3339.")
    ] = None,
    occurred_to: Annotated[
        Timestamp | None, Query(alias="occurredTo", description="Inclusive; RFC 3339.")
    ] = None,
) -> queries.EventFilters:
    if entity_type is not None and entity_type not in queries.ENTITY_TYPES:
        allowed = ", ".join(_ENTITY_TYPES)
        raise ValidationFailed("entityType", f"must be one of {allowed}")
    if occurred_from is not None and occurred_to is not None and occurred_from > occurred_to:
        raise ValidationFailed("occurredFrom", "must not be later than occurredTo")
    patterns = [part.strip() for value in event_type or [] for part in value.split(",")]
    return queries.EventFilters(
        event_types=queries.event_types(patterns),
        entity_type=entity_type,
        entity_id=entity_id,
        occurred_from=occurred_from,
        occurred_to=occurred_to,
    )


@router.get("", response_model=Page[EventOut], summary="List events")
async def list_events(
    session: TenantReader,
    page: Paging,
    filters: Annotated[queries.EventFilters, Depends(event_filters)],
    links: PublicLinks,
) -> WireJSON:
    """The tenant's event log, newest first (occurredAt, then id): every event of every
    entity, each with the snapshot of its entity in `data.object`."""
    return WireJSON(await queries.list_events(session, filters, page, links))


@router.get("/{event_id}", response_model=EventOut, summary="Get an event")
async def get_event(event_id: UUID, session: TenantReader, links: PublicLinks) -> WireJSON:
    return WireJSON(await queries.get_event(session, event_id, links))
