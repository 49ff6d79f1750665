import uuid

from sqlalchemy import select

from tenvoice.events.models import Event
from tenvoice.events.schemas import ActorOut, EventOut, Timeline
from tenvoice.platform.db import ReadSession

T = Event


async def stream(session: ReadSession, stream_id: uuid.UUID) -> Timeline:
    """Every event of one stream, oldest first."""
    rows = await session.execute(
        select(
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
        .where(T.stream_id == stream_id)
        .order_by(T.occurred_at, T.id)
    )
    return Timeline(
        data=[
            EventOut(
                id=row.id,
                event_type=row.event_type,
                entity_type=row.entity_type,
                entity_id=row.entity_id,
                occurred_at=row.occurred_at,
                request_id=row.request_id,
                actor=ActorOut(type=row.actor_type, id=row.actor_id),
                data=row.data,
            )
            for row in rows
        ]
    )
