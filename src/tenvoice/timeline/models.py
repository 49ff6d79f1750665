import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Index, String
from sqlalchemy.orm import Mapped, mapped_column

from tenvoice.platform.db import Base
from tenvoice.platform.tenancy import TenantOwned


class TimelineEntry(TenantOwned, Base):
    __tablename__ = "timeline_events"
    __table_args__ = (
        Index("ix_timeline_events_tenant_stream", "tenant_id", "stream_id", "occurred_at", "id"),
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
