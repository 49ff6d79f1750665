"""API key lookups remembered per process, dropped the moment any process revokes a key.

Every authenticated request resolves its key; without a cache that is one database round trip
per request. The cache is trusted only while this process listens on PostgreSQL's
`LISTEN`/`NOTIFY` channel that revocations announce themselves on (`NOTIFY` is delivered when
the revoking transaction commits). If that feed is down, nothing is served from the cache, so
a revoked key can never outlive its revocation by more than the notification's own delivery.
SQLite has no such feed (and its lookup is a local file read), so there the cache stays off.
"""

import asyncio
import contextlib
import logging
import socket
import time
import uuid
from dataclasses import dataclass

import asyncpg
from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from tenvoice.platform.db import WriteSession, asyncpg_dsn
from tenvoice.platform.outage import Outage

log = logging.getLogger("tenvoice.keys")

CHANNEL = "tenvoice_api_key_revoked"
# A bound on staleness even if a notification were lost in a way the connection never noticed.
TTL_SECONDS = 30.0
MAX_ENTRIES = 10_000
_RECONNECT_SECONDS = 1.0
_CONNECT_TIMEOUT = 10.0
# The feed only ever reads, so a peer that vanished without a FIN or RST (a host gone, a
# NAT or firewall that forgot the connection) would leave it "listening" forever and the
# cache trusted; keepalive probes find that out within about a minute.
_KEEPALIVE_IDLE_SECONDS = 30
_KEEPALIVE_INTERVAL_SECONDS = 10
_KEEPALIVE_PROBES = 3


@dataclass(frozen=True, slots=True)
class CachedKey:
    key_id: uuid.UUID
    tenant_id: uuid.UUID
    # The tenant's own rate limit, kept here so that limiting a request costs no query; a
    # change to it is announced like a revocation and drops the entry everywhere.
    tenant_rate_limit: str | None
    expires_at: float


class ApiKeyCache:
    def __init__(self, ttl: float = TTL_SECONDS, max_entries: int = MAX_ENTRIES) -> None:
        self._ttl = ttl
        self._max_entries = max_entries
        self._entries: dict[str, CachedKey] = {}
        # Bumped by every invalidation; a lookup that started before one must not be stored,
        # or a key read just before its revocation would be cached after it.
        self._generation = 0
        self._listening = False
        self._supervisor: asyncio.Task[None] | None = None

    @property
    def trusted(self) -> bool:
        return self._listening

    @property
    def generation(self) -> int:
        return self._generation

    def get(self, key_hash: str) -> CachedKey | None:
        if not self._listening:
            return None
        found = self._entries.get(key_hash)
        if found is None or found.expires_at < time.monotonic():
            return None
        return found

    def put(
        self,
        key_hash: str,
        key_id: uuid.UUID,
        tenant_id: uuid.UUID,
        generation: int,
        tenant_rate_limit: str | None = None,
    ) -> None:
        if not self._listening or generation != self._generation:
            return
        if len(self._entries) >= self._max_entries:
            # Oldest first (dicts keep insertion order): crude, but bounded and O(1).
            del self._entries[next(iter(self._entries))]
        expires_at = time.monotonic() + self._ttl
        self._entries[key_hash] = CachedKey(key_id, tenant_id, tenant_rate_limit, expires_at)

    def invalidate(self) -> None:
        self._generation += 1
        self._entries.clear()

    async def start(self, database_url: str) -> None:
        """Listen for revocations (PostgreSQL only); the cache serves once the feed is up."""
        if not make_url(database_url).drivername.startswith("postgres"):
            return
        dsn = asyncpg_dsn(database_url)
        self._supervisor = asyncio.create_task(self._listen(dsn), name="api-key-revocations")

    async def close(self) -> None:
        if self._supervisor is not None:
            self._supervisor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._supervisor
            self._supervisor = None

    async def _listen(self, dsn: str) -> None:
        outage = Outage(log, "the API key revocation feed", first=_RECONNECT_SECONDS)
        while True:
            try:
                await self._follow(dsn, outage)
                reason = "its connection was lost"
            except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                reason = type(exc).__name__
            await asyncio.sleep(outage.failed(reason, "the key cache is off"))

    async def _follow(self, dsn: str, outage: Outage) -> None:
        """Serve from the cache for as long as one listening connection lives."""
        connection = await asyncpg.connect(dsn, timeout=_CONNECT_TIMEOUT)
        try:
            _keep_alive(connection)
            lost = asyncio.Event()
            connection.add_termination_listener(lambda _connection: lost.set())
            await connection.add_listener(CHANNEL, self._on_revoked)
            # Revocations while the feed was down were missed: lookups that started then must
            # not be stored now (the bumped generation refuses them).
            self.invalidate()
            self._listening = True
            outage.recovered()
            await lost.wait()
        finally:
            self._listening = False
            self.invalidate()
            if not connection.is_closed():
                connection.terminate()

    def _on_revoked(self, _connection: object, _pid: int, _channel: str, _payload: str) -> None:
        # Revocations are rare: dropping everything is simpler than tracking keys by id, and
        # costs one database lookup per active key.
        self.invalidate()


def _keep_alive(connection: asyncpg.Connection) -> None:
    # asyncpg takes no keepalive parameters, and server_settings only reach the server; the
    # options go on the client's own socket (a Unix socket has none to set).
    sock = connection._transport.get_extra_info("socket")
    if sock is None or sock.family not in (socket.AF_INET, socket.AF_INET6):
        return
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    for option, value in (
        ("TCP_KEEPIDLE", _KEEPALIVE_IDLE_SECONDS),
        ("TCP_KEEPINTVL", _KEEPALIVE_INTERVAL_SECONDS),
        ("TCP_KEEPCNT", _KEEPALIVE_PROBES),
    ):
        if hasattr(socket, option):  # Linux names; other systems keep their defaults
            sock.setsockopt(socket.IPPROTO_TCP, getattr(socket, option), value)


async def announce_revocation(session: WriteSession, key_id: uuid.UUID) -> None:
    """Tell every process's cache, when this transaction commits, that a key was revoked."""
    await _announce(session, str(key_id))


async def announce_tenant_change(session: WriteSession, tenant_id: uuid.UUID) -> None:
    """Tell every process's cache, when this transaction commits, that what it keeps of a
    tenant (its rate limit) changed; the same feed as revocations, which drop everything."""
    await _announce(session, f"tenant:{tenant_id}")


async def _announce(session: WriteSession, payload: str) -> None:
    if session.get_bind().dialect.name == "postgresql":
        await session.execute(select(func.pg_notify(CHANNEL, payload)))
