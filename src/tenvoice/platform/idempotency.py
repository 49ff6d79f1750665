"""`Idempotency-Key` on every POST (API.md), after Stripe's.

The first request with a key claims it (a row in `in_flight`); its response is stored and
every retry with the same key and the same request gets that response again, marked
`Idempotent-Replayed: true`. The same key with another request is refused (422), and so is
a retry while the first is still running (409). Keys belong to the caller's tenant (or to
the admin): one tenant's key never collides with, nor reveals, another's.

Like Stripe, only responses of requests that ran are kept. A request refused before it ran
(malformed, unauthenticated, invalid) or one that failed on our side (5xx) changed nothing,
so its key is released and a corrected retry may reuse it.

The stored response is written after the change commits. Should the process die in that
instant, the key stays in flight until its lock expires and a retry then runs the request
again; that window is the price of keeping this out of every command's transaction.
"""

import hashlib
import logging
from collections.abc import Awaitable, Callable, Coroutine
from datetime import datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import Index, Integer, LargeBinary, Row, String, delete, select, update
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.orm import Mapped, mapped_column
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tenvoice.config import Settings
from tenvoice.platform.db import JSON_DOCUMENT, Base, Database, utcnow
from tenvoice.platform.errors import FieldError
from tenvoice.platform.http import DEPENDENCY_ERRORS, dependency_down, problem
from tenvoice.platform.sql import insert_into

log = logging.getLogger("tenvoice.idempotency")

HEADER = b"idempotency-key"
UNKEYED_PREFIX = "/api/webhooks/"
MAX_KEY_LENGTH = 255
# A request holds its key this long at most; past it, the holder is presumed dead.
LOCK = timedelta(seconds=60)
# Answers that mean the request never ran, or failed on our side: the key is released.
_NOT_KEPT = frozenset({400, 401, 403, 413, 415, 422, 429})
_KEPT_HEADERS = frozenset({b"content-type", b"location", b"allow", b"retry-after"})


class IdempotencyKey(Base):
    __tablename__ = "idempotency_keys"
    __table_args__ = (Index("ix_idempotency_keys_created", "created_at"),)

    # The tenant's id, or "admin": who the key belongs to.
    scope: Mapped[str] = mapped_column(String(64), primary_key=True)
    key: Mapped[str] = mapped_column(String(MAX_KEY_LENGTH), primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))
    response_status: Mapped[int | None] = mapped_column(Integer)
    response_headers: Mapped[list[list[str]] | None] = mapped_column(JSON_DOCUMENT)
    response_body: Mapped[bytes | None] = mapped_column(LargeBinary)
    created_at: Mapped[datetime]
    locked_until: Mapped[datetime]


K = IdempotencyKey
_HELD = select(
    K.fingerprint,
    K.status,
    K.locked_until,
    K.response_status,
    K.response_headers,
    K.response_body,
)
_Held = Row[str, str, datetime, int | None, list[list[str]] | None, bytes | None]
IN_FLIGHT, COMPLETED = "in_flight", "completed"
ScopeOf = Callable[[Request], Awaitable[str | None]]


def fingerprint(method: str, path: str, query: bytes, body: bytes) -> str:
    """The request's identity: a re-serialised JSON body (other key order, other spacing)
    is the same request."""
    try:
        canonical = orjson.dumps(orjson.loads(body), option=orjson.OPT_SORT_KEYS)
    except orjson.JSONDecodeError:
        canonical = body
    digest = hashlib.sha256()
    for part in (method.encode(), path.encode(), query, canonical):
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.hexdigest()


async def purge_expired(connection: AsyncConnection, settings: Settings, now: datetime) -> int:
    cutoff = now - timedelta(hours=settings.idempotency_retention_hours)
    result = await connection.execute(delete(K).where(K.created_at < cutoff))
    return result.rowcount


class IdempotencyMiddleware:
    def __init__(self, app: ASGIApp, scope_of: ScopeOf) -> None:
        self.app = app
        self.scope_of = scope_of

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        key = _key_header(scope)
        if key is None:
            await self.app(scope, receive, send)
            return
        if not 1 <= len(key) <= MAX_KEY_LENGTH:
            message = f"must be 1 to {MAX_KEY_LENGTH} characters"
            response = problem(
                422,
                "validation_failed",
                "Validation failed",
                f"Idempotency-Key: {message}",
                [FieldError("Idempotency-Key", message)],
            )
            await response(scope, receive, send)
            return
        try:
            owner = await self.scope_of(Request(scope, receive))
        except DEPENDENCY_ERRORS as exc:
            await dependency_down(exc)(scope, receive, send)
            return
        if owner is None:
            # Not authenticated: the route refuses it, and there is no one to own the key.
            await self.app(scope, receive, send)
            return
        body = await _read_body(receive)
        if body is None:
            return  # the client went away, or the body guard stopped an oversized body
        db: Database = scope["app"].state.db
        print_ = fingerprint(scope["method"], scope["path"], scope.get("query_string", b""), body)
        try:
            answer = await _claim(db, owner, key, print_)
        except DEPENDENCY_ERRORS as exc:
            answer = dependency_down(exc)
        if answer is not None:
            await answer(scope, receive, send)
            return
        await self._run(scope, _replay(body, receive), send, db, owner, key)

    async def _run(
        self, scope: Scope, receive: Receive, send: Send, db: Database, owner: str, key: str
    ) -> None:
        status = 500
        headers: list[tuple[bytes, bytes]] = []
        parts: list[bytes] = []

        async def capture(message: Message) -> None:
            nonlocal status, headers
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers", []))
            elif message["type"] == "http.response.body":
                parts.append(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, capture)
        except BaseException:
            await _settle(_release(db, owner, key))
            raise
        if status >= 500 or status in _NOT_KEPT:
            await _settle(_release(db, owner, key))
            return
        kept = [
            [name.decode(), value.decode("latin-1")]
            for name, value in headers
            if name.lower() in _KEPT_HEADERS
        ]
        await _settle(_complete(db, owner, key, status, kept, b"".join(parts)))


def _key_header(scope: Scope) -> str | None:
    if scope["type"] != "http" or scope["method"] != "POST":
        return None
    if scope["path"].startswith(UNKEYED_PREFIX):
        # Signed webhooks are deduplicated by their own webhook-id in the inbox; a stored
        # answer must never stand in for checking their signature.
        return None
    for name, value in scope["headers"]:
        if name == HEADER:
            return str(value.decode("latin-1").strip())
    return None


async def _read_body(receive: Receive) -> bytes | None:
    parts: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        parts.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(parts)


def _replay(body: bytes, receive: Receive) -> Receive:
    delivered = False

    async def replay() -> Message:
        nonlocal delivered
        if not delivered:
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


async def _claim(db: Database, owner: str, key: str, print_: str) -> Response | None:
    """None when this request now holds the key, else the answer it gets instead.

    The key is read before it is claimed: a retry or replay then costs one read and, on
    SQLite, does not queue for the write lock behind the very request it is waiting on.
    """
    for _ in range(3):
        now = utcnow()
        async with db.lookup(primary=True) as connection:
            held = (await connection.execute(_HELD.where(K.scope == owner, K.key == key))).first()
        if held is None:
            async with db.autocommit() as connection:
                claimed = await connection.execute(
                    insert_into(db.dialect, K)
                    .values(
                        scope=owner,
                        key=key,
                        fingerprint=print_,
                        status=IN_FLIGHT,
                        created_at=now,
                        locked_until=now + LOCK,
                    )
                    .on_conflict_do_nothing(index_elements=[K.scope, K.key])
                    .returning(K.key)
                )
                if claimed.first() is not None:
                    return None
            continue  # another request claimed it first: answer as its retry
        if held.status == IN_FLIGHT and held.locked_until < now and held.fingerprint == print_:
            # Its holder died mid-request; the retry runs it again (the module docstring
            # names the one instant in which that repeats a committed change).
            async with db.autocommit() as connection:
                taken = await connection.execute(
                    update(K)
                    .where(K.scope == owner, K.key == key, K.locked_until == held.locked_until)
                    .values(locked_until=now + LOCK)
                )
            if taken.rowcount == 1:
                return None
            continue
        return _answer_existing(held, print_)
    # Claimed and released over and over within a moment: as good as in flight.
    return _in_flight()


def _answer_existing(held: _Held, print_: str) -> Response:
    if held.fingerprint != print_:
        return problem(
            422,
            "idempotency_key_reused",
            "Idempotency key reused",
            "This Idempotency-Key was used with a different request; use a new key.",
        )
    if held.status != COMPLETED:
        return _in_flight()
    response = Response(held.response_body or b"", status_code=held.response_status or 200)
    response.raw_headers = [
        *[(n.encode(), v.encode("latin-1")) for n, v in held.response_headers or []],
        (b"content-length", str(len(held.response_body or b"")).encode()),
        (b"idempotent-replayed", b"true"),
    ]
    return response


async def _complete(
    db: Database, owner: str, key: str, status: int, headers: list[list[str]], body: bytes
) -> None:
    async with db.autocommit() as connection:
        await connection.execute(
            update(K)
            .where(K.scope == owner, K.key == key)
            .values(
                status=COMPLETED,
                response_status=status,
                response_headers=headers,
                response_body=body,
            )
        )


async def _settle(step: Coroutine[Any, Any, None]) -> None:
    """Record how a request ended; its response has gone out, so a failure is only logged.

    Should the database be down just then, the key stays in flight until its lock expires.
    """
    try:
        await step
    except DEPENDENCY_ERRORS as exc:
        log.warning("idempotency key not settled: %s", type(exc).__name__)


def _in_flight() -> Response:
    return problem(
        409,
        "idempotency_key_in_flight",
        "Idempotency key in flight",
        "A request with this Idempotency-Key is still running; retry shortly.",
        headers={"Retry-After": "1"},
    )


async def _release(db: Database, owner: str, key: str) -> None:
    async with db.autocommit() as connection:
        await connection.execute(
            delete(K).where(K.scope == owner, K.key == key, K.status == IN_FLIGHT)
        )
