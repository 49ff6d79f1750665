"""The inbox: every webhook message received, by its sender's id, exactly once.

A message is entered in the same transaction that applies it. Its id is the primary key,
so a repeat, even one arriving while the first is still being applied, cannot be entered
twice: on PostgreSQL the second insert waits for the first transaction and then finds the
row; on SQLite write transactions run one at a time. A message that was not applied (its
transaction rolled back) leaves no row, and its redelivery is applied normally.
"""

import uuid
from datetime import datetime

from sqlalchemy import String, Text, update
from sqlalchemy.orm import Mapped, mapped_column

from tenvoice.platform.db import Base, WriteSession, utcnow
from tenvoice.platform.sql import insert_into


class InboxMessage(Base):
    """A platform table: message ids are the sender's, unique across all tenants."""

    __tablename__ = "inbox_messages"

    source: Mapped[str] = mapped_column(String(32), primary_key=True)
    message_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    tenant_id: Mapped[uuid.UUID | None]
    message_type: Mapped[str] = mapped_column(String(64))
    # processed, or ignored (with why): what became of it.
    outcome: Mapped[str] = mapped_column(String(16))
    detail: Mapped[str | None] = mapped_column(Text, default=None)
    received_at: Mapped[datetime]


M = InboxMessage


async def enter(
    session: WriteSession,
    source: str,
    message_id: str,
    message_type: str,
    tenant_id: uuid.UUID | None,
) -> bool:
    """Enter a message as processed; False if it was entered before (a duplicate)."""
    entered = await session.execute(
        insert_into(session.get_bind().dialect.name, M)
        .values(
            source=source,
            message_id=message_id,
            tenant_id=tenant_id,
            message_type=message_type,
            outcome="processed",
            received_at=utcnow(),
        )
        .on_conflict_do_nothing(index_elements=[M.source, M.message_id])
        .returning(M.message_id)
    )
    return entered.first() is not None


async def mark_ignored(session: WriteSession, source: str, message_id: str, why: str) -> None:
    await session.execute(
        update(M)
        .where(M.source == source, M.message_id == message_id)
        .values(outcome="ignored", detail=why)
    )
