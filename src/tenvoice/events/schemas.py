import re
from datetime import UTC, datetime
from typing import Annotated, Any
from uuid import UUID

from pydantic import BeforeValidator, Field, WithJsonSchema

from tenvoice.platform.schemas import OutputModel

ACTOR_TYPES = ("api_key", "admin", "gateway", "system", "customer")


class ActorOut(OutputModel):
    type: Annotated[str, WithJsonSchema({"type": "string", "enum": list(ACTOR_TYPES)})]
    id: str | None


class EventOut(OutputModel):
    id: UUID
    event_type: str
    entity_type: str
    entity_id: UUID
    occurred_at: datetime
    request_id: str | None
    actor: ActorOut
    data: Annotated[
        dict[str, Any],
        Field(
            description="The event's own fields and, under `object`, the entity as its GET "
            "returned it right after the change (a snapshot, not a live read)."
        ),
    ]


class Timeline(OutputModel):
    data: list[EventOut]


# RFC 3339 section 5.6: a full date and time with its offset. Pydantic's own datetime
# parsing would also take Unix timestamps and times without a zone, whose meaning a client
# could only guess.
_RFC_3339 = re.compile(
    r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?(?:[Zz]|[+-]\d{2}:\d{2})$"
)
# An unencoded "+01:00" in a query string arrives as " 01:00" (a "+" decodes to a space);
# nothing else could put a space there, so it is read as the "+" the client meant.
_SPACED_OFFSET = re.compile(r"(T\d{2}:\d{2}:\d{2}(?:\.\d+)?) (\d{2}:\d{2})$", re.IGNORECASE)


def _timestamp(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str):
        raise ValueError("must be an RFC 3339 timestamp such as 2026-11-23T10:00:00Z")
    value = _SPACED_OFFSET.sub(r"\1+\2", value)
    if not _RFC_3339.match(value):
        raise ValueError("must be an RFC 3339 timestamp such as 2026-11-23T10:00:00Z")
    # Python reads at most 6 fractional digits; RFC 3339 allows more (nanoseconds).
    value = re.sub(r"(\.\d{6})\d+", r"\1", value).upper()
    try:
        # In UTC here: a bound that only overflows once converted (0001-01-01T00:00:00+05:00)
        # is the client's error, not the database driver's.
        return datetime.fromisoformat(value).astimezone(UTC)
    except (ValueError, OverflowError):
        raise ValueError("is not a real date and time in range") from None


Timestamp = Annotated[
    datetime,
    BeforeValidator(_timestamp),
    WithJsonSchema({"type": "string", "format": "date-time", "example": "2026-11-23T10:00:00Z"}),
]
