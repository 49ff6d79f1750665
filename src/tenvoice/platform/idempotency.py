"""`Idempotency-Key` on every POST (API.md), after Stripe's.

The first request with a key claims it (a row in `in_flight`); its response is stored and
every retry with the same key and the same request gets that response again, marked
`Idempotent-Replayed: true`. The same key with another request is refused (422), and so is
a retry while the first is still running (409). Keys belong to the credential that sent
them (an API key, or the admin), never to the tenant a header names: a stored answer goes
back only to the caller that could make the request, and one caller's keys never collide
with, nor reveal, another's.

Like Stripe, only responses of requests that ran are kept. A request refused before it ran
(malformed, unauthenticated, invalid) or one that failed on our side (5xx) changed nothing,
so its key is released and a corrected retry may reuse it.

An answer is stored before its first byte is sent, so a retry that starts once the client
has it always replays it. It is stored after the change commits, though, not in the same
transaction: the route's transaction ends before its answer is rendered. Should the process
die between the commit and the store, the key stays in flight until its lock expires and a
retry then runs the request again.

An answer that carries a secret shown only once (a route marked with `shows_secret_once`)
is never stored: a retry of it is refused (409) rather than handed the secret again.
"""

import hashlib
import logging
from collections.abc import Awaitable, Callable, Coroutine
from datetime import datetime, timedelta
from typing import Any, NamedTuple

import orjson
from sqlalchemy import Index, Integer, LargeBinary, Row, String, delete, select, update
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.orm import Mapped, mapped_column
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tenvoice.config import Settings
from tenvoice.platform.asgi import read_body, replay_body
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
# Set on a request's scope by a route whose answer carries a secret shown only once.
_SHOWN_ONCE = "tenvoice.shown_once"


class IdempotencyKey(Base):
    __tablename__ = "idempotency_keys"
    __table_args__ = (Index("ix_idempotency_keys_created", "created_at"),)

    # The credential the key belongs to: "admin", or "key:" and the API key's id.
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
# A withheld answer carried a secret: only its status is kept, and the body holds what a
# retry is told instead.
IN_FLIGHT, COMPLETED, WITHHELD = "in_flight", "completed", "withheld"


class Owner(NamedTuple):
    """Whose keys a request uses, and the tenant it acts as when that is not implied."""

    credential: str
    # The tenant the admin names in X-Tenant-Id ("" for none): part of what the request is,
    # since the same path and body for another tenant is another request.
    tenant: str = ""


ScopeOf = Callable[[Request], Awaitable[Owner | None]]


def fingerprint(method: str, path: str, query: bytes, body: bytes, tenant: str = "") -> str:
    """The request's identity: a re-serialised JSON body (other key order, other spacing)
    is the same request."""
    try:
        canonical = orjson.dumps(orjson.loads(body), option=orjson.OPT_SORT_KEYS)
    except orjson.JSONDecodeError:
        canonical = body
    parts = [method.encode(), path.encode(), query, canonical]
    if tenant:
        # Only when named, so that the requests that name no tenant keep their fingerprints.
        parts.append(tenant.encode())
    digest = hashlib.sha256()
    for part in parts:
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.hexdigest()


def shows_secret_once(detail: str) -> Callable[[Request], Awaitable[None]]:
    """A route dependency: the route's successful answer carries a secret shown only once.

    Such an answer is never stored; a retry of it gets 409
    `idempotency_key_secret_not_replayable` with `detail` (which says what to do instead).
    """

    async def mark(request: Request) -> None:
        request.scope[_SHOWN_ONCE] = detail

    return mark


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
        body = await read_body(receive)
        if body is None:
            return  # the client went away, or the body guard stopped an oversized body
        db: Database = scope["app"].state.db
        query = scope.get("query_string", b"")
        print_ = fingerprint(scope["method"], scope["path"], query, body, owner.tenant)
        try:
            answer = await _claim(db, owner.credential, key, print_)
        except DEPENDENCY_ERRORS as exc:
            answer = dependency_down(exc)
        if answer is not None:
            await answer(scope, receive, send)
            return
        await self._run(scope, replay_body(body, receive), send, db, owner.credential, key)

    async def _run(
        self, scope: Scope, receive: Receive, send: Send, db: Database, owner: str, key: str
    ) -> None:
        """Run the request, holding its answer back until the key records how it ended.

        A POST's answer is small, so it is buffered whole; whatever the app does after
        its last byte (background tasks) still runs after the client has the answer.
        """
        start: Message = {}
        parts: list[bytes] = []
        settled = False

        async def store_then_send(message: Message) -> None:
            nonlocal start, settled
            if settled or message["type"] not in ("http.response.start", "http.response.body"):
                await send(message)
            elif message["type"] == "http.response.start":
                start = message
            else:
                parts.append(message.get("body", b""))
                if message.get("more_body", False):
                    return
                settled = True
                body = b"".join(parts)
                withheld: str | None = scope.get(_SHOWN_ONCE)
                await _settle(_record(db, owner, key, start, body, withheld))
                await send(start)
                await send({**message, "body": body})

        try:
            await self.app(scope, receive, store_then_send)
        finally:
            if not settled:
                # It raised, or ended without an answer: nothing was sent, so nothing is kept.
                await _settle(_release(db, owner, key))


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
    if held.status == WITHHELD:
        return problem(
            409,
            "idempotency_key_secret_not_replayable",
            "Idempotency key secret not replayable",
            (held.response_body or b"").decode(),
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


async def _record(
    db: Database, owner: str, key: str, start: Message, body: bytes, secret: str | None
) -> None:
    status: int = start["status"]
    if status >= 500 or status in _NOT_KEPT:
        await _release(db, owner, key)
        return
    if secret is not None and status < 300:
        # The answer's secret is not kept anywhere; the row keeps what a retry is told.
        outcome = {"status": WITHHELD, "response_body": secret.encode()}
    else:
        headers = [
            [name.decode(), value.decode("latin-1")]
            for name, value in start.get("headers", [])
            if name.lower() in _KEPT_HEADERS
        ]
        outcome = {"status": COMPLETED, "response_headers": headers, "response_body": body}
    async with db.autocommit() as connection:
        await connection.execute(
            update(K)
            .where(K.scope == owner, K.key == key)
            .values(response_status=status, **outcome)
        )


async def _settle(step: Coroutine[Any, Any, None]) -> None:
    """Record how a request ended; its change stands either way, so a failure is only logged.

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
