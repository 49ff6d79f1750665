"""The unit of work: one write transaction, and the events it produces handled inside it.

Adapted from the cosmicpython unit of work with one change: event handlers run *before*
commit, in the same transaction, so an event-log row (or outbox row) exists exactly when the
change it records does. A handler that fails rolls the whole change back.
"""

import contextlib
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from tenvoice.platform.db import WriteSession
from tenvoice.platform.messages import DomainEvent, EventHandlers, EventRecorder
from tenvoice.platform.tenancy import RequestContext

C = TypeVar("C")
R = TypeVar("R")
A = TypeVar("A", bound=EventRecorder)

# A command whose handlers keep raising events past this many rounds has a handler loop.
_MAX_EVENT_ROUNDS = 10

# Writes rows that event handlers staged, in one go, just before commit.
StagedWriter = Callable[["UnitOfWork", list[Any]], Awaitable[None]]


class UnitOfWork:
    def __init__(
        self, session: WriteSession, context: RequestContext, handlers: EventHandlers
    ) -> None:
        self.session = session
        self.context = context
        self._handlers = handlers
        self._seen: list[EventRecorder] = []
        self._staged: dict[StagedWriter, list[Any]] = {}

    def track(self, aggregate: A) -> A:
        """Remember an aggregate so its events are collected at commit."""
        if not any(seen is aggregate for seen in self._seen):
            self._seen.append(aggregate)
        return aggregate

    def find(self, aggregate_id: uuid.UUID) -> EventRecorder | None:
        """The tracked aggregate with this id (the entity an event is about)."""
        for seen in self._seen:
            if getattr(seen, "id", None) == aggregate_id:
                return seen
        return None

    def stage(self, writer: StagedWriter, row: Any) -> None:
        """Keep a row for `writer`, which writes all of them at once before commit: many
        events of one command cost one statement, not one each."""
        self._staged.setdefault(writer, []).append(row)

    async def run(self, handler: Callable[["UnitOfWork", C], Awaitable[R]], command: C) -> R:
        """Handle one command and commit it with its events; on any error nothing is kept."""
        async with self.session.writer or contextlib.nullcontext():
            try:
                result = await handler(self, command)
                await self.commit()
            except BaseException:
                # End the transaction before the next writer's turn: on SQLite it holds the
                # database's write lock until it ends. A failed rollback must not hide why.
                with contextlib.suppress(Exception):
                    await self.session.rollback()
                raise
        return result

    async def commit(self) -> None:
        for _ in range(_MAX_EVENT_ROUNDS):
            events = sorted(
                (pulled for aggregate in self._seen for pulled in aggregate.pull_numbered_events()),
                key=lambda pulled: pulled[0],
            )
            if not events:
                break
            for _, event in events:
                await self.dispatch(event)
        else:
            raise RuntimeError("event handlers kept raising new events")
        staged, self._staged = self._staged, {}
        for writer, rows in staged.items():
            await writer(self, rows)
        await self.session.commit()

    async def dispatch(self, event: DomainEvent) -> None:
        for handle in self._handlers.get(type(event), ()):
            await handle(event, self)
