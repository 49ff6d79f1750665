"""Every domain event that reaches a timeline is logged, with a snapshot of its entity."""

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from tenvoice.events.log import write_events
from tenvoice.platform.db import WriteSession, utcnow
from tenvoice.platform.ids import uuid7
from tenvoice.platform.messages import DomainEvent, EventHandler, event_data
from tenvoice.platform.uow import UnitOfWork

# The API's representation of an aggregate, JSON-ready: what GET returns for it. Given the
# session, for what the command did not load (a paid invoice's lines).
Snapshot = Callable[[Any, WriteSession], Awaitable[dict[str, Any]]]


def event_logger(snapshots: Mapping[str, Snapshot]) -> EventHandler:
    """The handler that logs an event, its entity rendered by `snapshots[entity_type]`."""

    async def log_event(event: DomainEvent, uow: UnitOfWork) -> None:
        context = uow.context
        data = event_data(event)
        entity = uow.find(event.entity_id)
        render = snapshots.get(event.entity_type)
        if entity is not None and render is not None:
            # Taken at commit, after the whole command: the entity as the answer shows it.
            data["object"] = await render(entity, uow.session)
        uow.stage(
            write_events,
            {
                "tenant_id": context.tenant_id,
                "id": uuid7(),
                "event_type": event.event_type,
                "entity_type": event.entity_type,
                "entity_id": event.entity_id,
                "stream_id": event.stream_id,
                "occurred_at": utcnow(),
                "request_id": context.request_id,
                "actor_type": context.actor.type,
                "actor_id": context.actor.id,
                "data": data,
            },
        )

    return log_event
