"""The unit of work: one write transaction, and the events it produces handled inside it.

Adapted from the cosmicpython unit of work with one change: event handlers run *before*
commit, in the same transaction, so a timeline row (or outbox row) exists exactly when the
change it records does. A handler that fails rolls the whole change back.
"""

import contextlib
from collections.abc import Awaitable, Callable
from typing import TypeVar

from tenvoice.platform.db import WriteSession
from tenvoice.platform.messages import DomainEvent, EventHandlers, EventRecorder
from tenvoice.platform.tenancy import RequestContext

C = TypeVar("C")
R = TypeVar("R")
A = TypeVar("A", bound=EventRecorder)

# A command whose handlers keep raising events past this many rounds has a handler loop.
_MAX_EVENT_ROUNDS = 10


class UnitOfWork:
    def __init__(
        self, session: WriteSession, context: RequestContext, handlers: EventHandlers
    ) -> None:
        self.session = session
        self.context = context
        self._handlers = handlers
        self._seen: list[EventRecorder] = []

    def track(self, aggregate: A) -> A:
        """Remember an aggregate so its events are collected at commit."""
        if not any(seen is aggregate for seen in self._seen):
            self._seen.append(aggregate)
        return aggregate

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
        await self.session.commit()

    async def dispatch(self, event: DomainEvent) -> None:
        for handle in self._handlers.get(type(event), ()):
            await handle(event, self)
