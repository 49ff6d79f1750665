"""The transactional outbox: work to do outside the database, written inside the transaction.

A job row is added to the same session as the change that calls for it, so it exists exactly
when the change does. The worker (`worker.py`) claims due rows, runs them at least once and
records every attempt; a side effect therefore never happens for a change that rolled back,
and is never lost for one that committed. Job handlers must tolerate running twice.
"""

import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from sqlalchemy import Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from tenvoice.platform import tracing
from tenvoice.platform.db import Base, WriteSession, utcnow
from tenvoice.platform.ids import uuid7

if TYPE_CHECKING:
    from tenvoice.platform.worker import JobContext


class JobStatus(StrEnum):
    PENDING = "pending"
    DONE = "done"
    DEAD = "dead"


class OutboxJob(Base):
    """A platform table: one worker drains every tenant's jobs, each run in its own tenant."""

    __tablename__ = "outbox_jobs"
    __table_args__ = (
        # Only pending rows are ever searched for, so only they are indexed: the index stays
        # the size of the backlog, not of the history.
        Index(
            "ix_outbox_jobs_due",
            "run_after",
            postgresql_where=text("status = 'pending'"),
            sqlite_where=text("status = 'pending'"),
        ),
        Index("ix_outbox_jobs_status_finished", "status", "finished_at"),
        # Jobs that stand for "look at X" (a webhook endpoint's dispatch) can be found while
        # nobody has claimed them yet, so that the one running for X absorbs them.
        Index(
            "ix_outbox_jobs_unclaimed_dedupe",
            "dedupe_key",
            postgresql_where=text("status = 'pending' AND attempts = 0"),
            sqlite_where=text("status = 'pending' AND attempts = 0"),
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid7)
    tenant_id: Mapped[uuid.UUID | None]
    kind: Mapped[str] = mapped_column(String(64))
    dedupe_key: Mapped[str | None] = mapped_column(String(128), default=None)
    payload: Mapped[dict[str, Any]]
    status: Mapped[str] = mapped_column(String(16), default=JobStatus.PENDING.value)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # When the job may next be claimed: its due time while it waits, the end of the
    # claiming worker's lease while it runs, the retry time after a failure.
    run_after: Mapped[datetime]
    last_error: Mapped[str | None] = mapped_column(Text, default=None)
    # The W3C trace context of the transaction that queued the job; None untraced.
    trace_context: Mapped[dict[str, str] | None] = mapped_column(default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(default=None)


@dataclass(frozen=True, slots=True)
class Job:
    """A claimed job, as its handler sees it."""

    id: uuid.UUID
    tenant_id: uuid.UUID | None
    kind: str
    payload: dict[str, Any]
    attempt: int
    # The trace of the transaction that queued it (W3C headers); None untraced.
    trace_context: dict[str, str] | None = None
    # When this attempt was due (the job's run_after before the claim); for its latency.
    due_at: datetime | None = field(default=None, compare=False)


JobHandler = Callable[[Job, "JobContext"], Awaitable[None]]
JobHandlers = Mapping[str, JobHandler]


def enqueue(
    session: WriteSession,
    kind: str,
    payload: dict[str, Any],
    *,
    tenant_id: uuid.UUID | None,
    delay: timedelta = timedelta(0),
    not_before: datetime | None = None,
    dedupe_key: str | None = None,
) -> OutboxJob:
    """Add a job to the session's transaction, due after `delay` or at `not_before`."""
    now = utcnow()
    job = OutboxJob(
        id=uuid7(),
        tenant_id=tenant_id,
        kind=kind,
        dedupe_key=dedupe_key,
        payload=payload,
        status=JobStatus.PENDING.value,
        attempts=0,
        run_after=max(now + delay, not_before or now),
        created_at=now,
        updated_at=now,
    )
    traced = tracing.current_context()
    if traced is not None:
        # Only then: an attribute set to None is written as JSON null, not SQL NULL.
        job.trace_context = traced
    session.add(job)
    return job
