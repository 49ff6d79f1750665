from datetime import datetime
from typing import Any
from uuid import UUID

from tenvoice.platform.schemas import OutputModel


class ActorOut(OutputModel):
    type: str
    id: str | None


class EventOut(OutputModel):
    id: UUID
    event_type: str
    entity_type: str
    entity_id: UUID
    occurred_at: datetime
    request_id: str | None
    actor: ActorOut
    data: dict[str, Any]


class Timeline(OutputModel):
    data: list[EventOut]
