"""Domain events: frozen dataclasses recorded by aggregates, handled before commit.

An event names itself (`event_type`, as on the wire: "invoice.finalized") and the entity it
is about; `stream_id` groups it on a timeline (payment events land on their invoice's).
"""

import dataclasses
import itertools
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from pydantic.alias_generators import to_camel

if TYPE_CHECKING:
    from tenvoice.platform.uow import UnitOfWork


class DomainEvent(Protocol):
    event_type: ClassVar[str]
    entity_type: ClassVar[str]

    @property
    def entity_id(self) -> uuid.UUID: ...

    @property
    def stream_id(self) -> uuid.UUID: ...


EventHandler = Callable[[Any, "UnitOfWork"], Awaitable[None]]
EventHandlers = Mapping[type, Sequence[EventHandler]]


def event_data(event: DomainEvent) -> dict[str, Any]:
    """The event's own fields, JSON-ready and camelCase like the rest of the wire."""
    return {
        to_camel(field.name): _jsonable(getattr(event, field.name))
        for field in dataclasses.fields(event)  # type: ignore[arg-type]
    }


def _jsonable(value: object) -> object:
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, tuple | list):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


# Numbers every recorded event in the process, so that events of several aggregates are
# handled in the order they happened (a payment succeeds, then its invoice is paid).
_recorded = itertools.count()


class EventRecorder:
    """Mixin for aggregates: changes record events; the unit of work collects them."""

    def record(self, event: DomainEvent) -> None:
        self.__dict__.setdefault("_pending_events", []).append((next(_recorded), event))

    def pull_events(self) -> list[DomainEvent]:
        """The events recorded since the last pull, oldest first."""
        return [event for _, event in self.pull_numbered_events()]

    def pull_numbered_events(self) -> list[tuple[int, DomainEvent]]:
        """The same, each with its place in the process-wide order of recording."""
        events: list[tuple[int, DomainEvent]] = self.__dict__.pop("_pending_events", [])
        return events
