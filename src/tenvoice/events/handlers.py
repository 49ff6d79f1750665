from tenvoice.events.models import Event
from tenvoice.platform.db import utcnow
from tenvoice.platform.ids import uuid7
from tenvoice.platform.messages import DomainEvent, event_data
from tenvoice.platform.uow import UnitOfWork


async def record_on_timeline(event: DomainEvent, uow: UnitOfWork) -> None:
    context = uow.context
    uow.session.add(
        Event(
            id=uuid7(),
            event_type=event.event_type,
            entity_type=event.entity_type,
            entity_id=event.entity_id,
            stream_id=event.stream_id,
            occurred_at=utcnow(),
            request_id=context.request_id,
            actor_type=context.actor.type,
            actor_id=context.actor.id,
            data=event_data(event),
        )
    )
