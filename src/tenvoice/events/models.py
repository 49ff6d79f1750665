import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Index, String
from sqlalchemy.orm import Mapped, mapped_column

from tenvoice.platform.db import Base
from tenvoice.platform.tenancy import TenantOwned


class Event(TenantOwned, Base):
    """One domain event of a tenant's log. `data` holds the event's own fields and, under
    `object`, the entity as the API returned it right after the change (a snapshot)."""

    __tablename__ = "events"
    __table_args__ = (
        # A timeline: the events of one invoice (payments included) or one customer.
        Index("ix_events_tenant_stream", "tenant_id", "stream_id", "occurred_at", "id"),
        # The Events API: newest first, whole log or narrowed to one type or one entity.
        Index("ix_events_tenant_occurred", "tenant_id", "occurred_at", "id"),
        Index("ix_events_tenant_type", "tenant_id", "event_type", "occurred_at", "id"),
        Index("ix_events_tenant_entity", "tenant_id", "entity_id", "occurred_at", "id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    event_type: Mapped[str] = mapped_column(String(64))
    entity_type: Mapped[str] = mapped_column(String(32))
    entity_id: Mapped[uuid.UUID]
    # The timeline the event appears on: its invoice's, for invoice and payment events.
    stream_id: Mapped[uuid.UUID]
    occurred_at: Mapped[datetime]
    request_id: Mapped[str | None] = mapped_column(String(128))
    actor_type: Mapped[str] = mapped_column(String(16))
    actor_id: Mapped[str | None] = mapped_column(String(64))
    data: Mapped[dict[str, Any]]
