"""The per-process API key cache: served only while the revocation feed is up.

The unit tests pin the cache's own rules. The others run real servers (uvicorn, the app's
lifespan, its LISTEN connection) on a real database; each server gets an engine of its own,
as a separate process would, and the `api_keys` lookups that engine sends are counted, which
is how a test tells a request served from the cache from one that read the database.
"""

import asyncio
import contextlib
import functools
import os
import socket
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from sqlalchemy import event, update
from sqlalchemy.engine import make_url

from tenvoice.config import Settings
from tenvoice.platform.db import Database, utcnow
from tenvoice.platform.messages import EventHandlers
from tenvoice.platform.tokens import token_hash
from tenvoice.tenants.keycache import CHANNEL, ApiKeyCache
from tenvoice.tenants.models import ApiKey
from tests import databases
from tests.conftest import Backend, TenantHandle, make_tenant
from tests.live import LiveServer, eventually, live_server
from tests.problems import assert_problem
from tests.tcpproxy import TcpProxy

LISTEN = f'LISTEN "{CHANNEL}"'
TENANT_ID = uuid.uuid4()
KEY_ID = uuid.uuid4()


# -- the cache's own rules, no database ------------------------------------------------


def listening_cache(**limits: Any) -> ApiKeyCache:
    cache = ApiKeyCache(**limits)
    # Only a live LISTEN connection sets this flag; these tests are about what the cache does
    # once it is trusted, so they stand in for the feed being up.
    cache._listening = True
    return cache


def test_nothing_is_served_or_stored_while_not_listening() -> None:
    cache = ApiKeyCache()
    assert cache.trusted is False
    cache.put("hash", KEY_ID, TENANT_ID, cache.generation)
    assert cache.get("hash") is None
    # Nor was it kept for later: the feed coming up does not bring back what was put before.
    cache._listening = True
    assert cache.trusted is True
    assert cache.get("hash") is None


def test_a_trusted_cache_serves_what_was_put() -> None:
    cache = listening_cache()
    cache.put("hash", KEY_ID, TENANT_ID, cache.generation)
    found = cache.get("hash")
    assert found is not None
    assert (found.key_id, found.tenant_id) == (KEY_ID, TENANT_ID)
    assert cache.get("other") is None


def test_it_stops_serving_the_moment_the_feed_is_down() -> None:
    cache = listening_cache()
    cache.put("hash", KEY_ID, TENANT_ID, cache.generation)
    cache._listening = False
    assert cache.get("hash") is None


def test_a_lookup_begun_before_an_invalidation_is_not_stored() -> None:
    cache = listening_cache()
    generation = cache.generation
    cache.invalidate()
    cache.put("hash", KEY_ID, TENANT_ID, generation)
    assert cache.get("hash") is None
    cache.put("hash", KEY_ID, TENANT_ID, cache.generation)
    assert cache.get("hash") is not None


def test_invalidate_drops_every_entry() -> None:
    cache = listening_cache()
    for name in ("a", "b", "c"):
        cache.put(name, uuid.uuid4(), TENANT_ID, cache.generation)
    cache.invalidate()
    assert [cache.get(name) for name in ("a", "b", "c")] == [None, None, None]


def test_entries_expire_after_the_ttl() -> None:
    cache = listening_cache(ttl=0.05)
    cache.put("hash", KEY_ID, TENANT_ID, cache.generation)
    assert cache.get("hash") is not None
    time.sleep(0.08)
    assert cache.get("hash") is None


def test_the_size_bound_evicts_the_oldest_entry() -> None:
    cache = listening_cache(max_entries=2)
    for name in ("a", "b", "c"):
        cache.put(name, uuid.uuid4(), TENANT_ID, cache.generation)
    assert cache.get("a") is None
    assert cache.get("b") is not None
    assert cache.get("c") is not None


async def test_on_sqlite_it_never_starts_listening(tmp_path: Path) -> None:
    cache = ApiKeyCache()
    await cache.start(f"sqlite:///{tmp_path / 'none.db'}")
    await asyncio.sleep(0.05)
    assert cache.trusted is False
    await cache.close()


# -- live servers ---------------------------------------------------------------------


@dataclass
class KeyLookups:
    """The API key lookups (`api_keys` by hash) one server's engines sent."""

    count: int = 0

    def __call__(
        self,
        _connection: Any,
        _cursor: Any,
        statement: str,
        _parameters: Any,
        _context: Any,
        _executemany: bool,
    ) -> None:
        if "FROM api_keys" in statement and "api_keys.key_hash =" in statement:
            self.count += 1


@contextlib.asynccontextmanager
async def serving(
    settings: Settings, event_handlers: EventHandlers
) -> AsyncIterator[tuple[LiveServer, KeyLookups]]:
    """A live server on an engine of its own (one process's worth), its lookups counted."""
    database = Database(settings.database_url, pool_size=5)
    lookups = KeyLookups()
    engines = {database.write_engine.sync_engine, database.read_engine.sync_engine}
    for engine in engines:
        event.listen(engine, "before_cursor_execute", lookups)
    try:
        async with live_server(settings, database, event_handlers, worker=False) as live:
            yield live, lookups
    finally:
        await database.dispose()


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def new_key(live: LiveServer, admin: dict[str, str], tenant: TenantHandle) -> dict[str, str]:
    response = await live.client.post(
        f"/api/tenants/{tenant.id}/api-keys", json={"name": "spare"}, headers=admin
    )
    assert response.status_code == 201, response.text
    created: dict[str, str] = response.json()
    return created


async def authenticated(live: LiveServer, headers: dict[str, str]) -> None:
    response = await live.client.get("/api/customers", headers=headers)
    assert response.status_code == 200, response.text


async def refused(live: LiveServer, headers: dict[str, str]) -> None:
    response = await live.client.get("/api/customers", headers=headers)
    assert_problem(response, 401, "invalid_api_key")


async def is_refused(live: LiveServer, headers: dict[str, str]) -> bool:
    response = await live.client.get("/api/customers", headers=headers)
    if response.status_code == 200:
        return False
    assert_problem(response, 401, "invalid_api_key")
    return True


async def served_from_cache(live: LiveServer, lookups: KeyLookups, headers: dict[str, str]) -> bool:
    """One authenticated request; True when it did not read `api_keys`."""
    before = lookups.count
    await authenticated(live, headers)
    return lookups.count == before


async def reads_the_key(live: LiveServer, lookups: KeyLookups, headers: dict[str, str]) -> bool:
    return not await served_from_cache(live, lookups, headers)


async def warm(live: LiveServer, lookups: KeyLookups, headers: dict[str, str]) -> None:
    """Use the key until the server answers it from its cache (its feed is up by then)."""

    async def cached() -> bool:
        return await served_from_cache(live, lookups, headers)

    await eventually(cached, timeout=3)


@pytest.fixture
async def superuser() -> AsyncIterator[Any]:
    """Sees every backend's query and may terminate any (the app role's included)."""
    connection = await asyncpg.connect(databases.BOOTSTRAP_URL)
    try:
        yield connection
    finally:
        await connection.close()


@pytest.fixture
async def owner(backend: Backend, db: Database) -> AsyncIterator[Any]:
    """The tables' owner: writes to `api_keys` behind the service's back."""
    assert backend.owner_url is not None
    connection = await asyncpg.connect(backend.owner_url)
    try:
        yield connection
    finally:
        await connection.close()


async def listeners(superuser: Any) -> set[int]:
    """The backends of every live server's revocation feed on the test database."""
    rows = await superuser.fetch(
        "SELECT pid FROM pg_stat_activity WHERE datname = $1 AND query = $2",
        databases.DATABASE,
        LISTEN,
    )
    return {int(row["pid"]) for row in rows}


async def count_listeners(superuser: Any, expected: int) -> set[int]:
    """Wait until exactly `expected` feeds listen, and return their backends."""

    async def settled() -> tuple[set[int], ...]:
        found = await listeners(superuser)
        return (found,) if len(found) == expected else ()

    [found] = await eventually(settled, timeout=3)
    return found


async def revoke_in_sql(owner: Any, key_id: str) -> None:
    """Revoke as the owner would by hand: no NOTIFY, no process hears of it."""
    await owner.execute("UPDATE api_keys SET revoked_at = now() WHERE id = $1", uuid.UUID(key_id))


@pytest.mark.backend("postgresql")
async def test_a_revocation_on_one_server_reaches_the_other_servers_cache(
    settings: Settings,
    db: Database,
    event_handlers: EventHandlers,
    admin: dict[str, str],
    superuser: Any,
) -> None:
    await count_listeners(superuser, 0)  # no feed left over from an earlier test
    async with (
        serving(settings, event_handlers) as (a, a_lookups),
        serving(settings, event_handlers) as (b, b_lookups),
    ):
        await count_listeners(superuser, 2)
        tenant = await make_tenant(a.client, admin, "Acme")
        spare = bearer((await new_key(a, admin, tenant))["key"])
        # Both servers hold the key (and the spare one) in their caches.
        for server, lookups in ((a, a_lookups), (b, b_lookups)):
            await warm(server, lookups, tenant.headers)
            await warm(server, lookups, spare)

        response = await a.client.delete(
            f"/api/tenants/{tenant.id}/api-keys/{tenant.key_id}", headers=admin
        )
        assert response.status_code == 204, response.text
        revoked_at = time.monotonic()
        await refused(a, tenant.headers)
        await eventually(functools.partial(is_refused, b, tenant.headers), timeout=2)
        assert time.monotonic() - revoked_at < 2
        # Only that key stops working; the other one is looked up again, then cached again.
        for server, lookups in ((a, a_lookups), (b, b_lookups)):
            assert not await served_from_cache(server, lookups, spare)
            await warm(server, lookups, spare)
            await refused(server, tenant.headers)


@pytest.mark.backend("postgresql")
async def test_the_cache_saves_the_lookup_of_a_key_in_use(
    settings: Settings,
    db: Database,
    event_handlers: EventHandlers,
    admin: dict[str, str],
    superuser: Any,
) -> None:
    await count_listeners(superuser, 0)
    async with serving(settings, event_handlers) as (live, lookups):
        await count_listeners(superuser, 1)
        tenant = await make_tenant(live.client, admin, "Acme")
        lookups.count = 0
        for _ in range(20):
            await authenticated(live, tenant.headers)
        # The first request reads the key; the feed may come up a moment after the LISTEN
        # backend shows, so allow a couple more.
        assert 1 <= lookups.count <= 3, lookups.count


@pytest.mark.backend("postgresql")
async def test_with_its_feed_killed_the_cache_stops_serving_then_comes_back(
    settings: Settings,
    db: Database,
    event_handlers: EventHandlers,
    admin: dict[str, str],
    superuser: Any,
    owner: Any,
) -> None:
    await count_listeners(superuser, 0)
    async with serving(settings, event_handlers) as (live, lookups):
        [feed] = await count_listeners(superuser, 1)
        tenant = await make_tenant(live.client, admin, "Acme")
        spare = bearer((await new_key(live, admin, tenant))["key"])
        await warm(live, lookups, tenant.headers)
        await warm(live, lookups, spare)

        assert await superuser.fetchval("SELECT pg_terminate_backend($1)", feed) is True

        async def feed_gone() -> bool:
            return feed not in await listeners(superuser)

        await eventually(feed_gone, timeout=2, interval=0.01)
        # The server sees its socket close a moment after PostgreSQL forgets the backend.
        await eventually(functools.partial(reads_the_key, live, lookups, spare), timeout=1)
        # A revocation nobody is told of: only a cache that stopped serving can refuse it.
        await revoke_in_sql(owner, tenant.key_id)
        await refused(live, tenant.headers)
        # Nothing is served meanwhile: every request reads the key.
        before = lookups.count
        await authenticated(live, spare)
        await authenticated(live, spare)
        assert lookups.count == before + 2

        async def feed_back() -> set[int]:
            return await listeners(superuser) - {feed}

        down_at = time.monotonic()
        assert len(await eventually(feed_back, timeout=3)) == 1
        assert time.monotonic() - down_at < 3
        await warm(live, lookups, spare)
        await refused(live, tenant.headers)


async def drop_slow_reads(owner: Any) -> None:
    await owner.execute(
        "DROP POLICY IF EXISTS test_key_cache_slow ON api_keys;"
        " ALTER TABLE api_keys DISABLE ROW LEVEL SECURITY"
    )


@pytest.mark.backend("postgresql")
async def test_a_key_read_while_the_feed_was_down_is_not_cached_once_it_is_back(
    settings: Settings,
    db: Database,
    event_handlers: EventHandlers,
    admin: dict[str, str],
    superuser: Any,
    owner: Any,
) -> None:
    """A lookup that straddles the reconnection must not be cached.

    To hold the lookup open after it has read the row, a row-level security policy on
    `api_keys` (which has none in the schema; the owner bypasses it) sleeps while reading
    this one key's row: the SELECT's snapshot predates a revocation committed during the
    sleep, and its answer comes back after the feed has reconnected.
    """
    await count_listeners(superuser, 0)
    slow: asyncio.Task[httpx.Response] | None = None
    try:
        async with serving(settings, event_handlers) as (live, lookups):
            [feed] = await count_listeners(superuser, 1)
            tenant = await make_tenant(live.client, admin, "Acme")
            spare = bearer((await new_key(live, admin, tenant))["key"])
            await warm(live, lookups, spare)
            await owner.execute(
                "ALTER TABLE api_keys ENABLE ROW LEVEL SECURITY;"
                " CREATE POLICY test_key_cache_slow ON api_keys USING ("
                f" key_hash <> '{token_hash(tenant.key)}' OR (SELECT true FROM pg_sleep(1.5)))"
            )

            assert await superuser.fetchval("SELECT pg_terminate_backend($1)", feed) is True

            # The server has noticed: it reads the spare key again.
            await eventually(functools.partial(reads_the_key, live, lookups, spare), timeout=1)
            slow = asyncio.create_task(live.client.get("/api/customers", headers=tenant.headers))

            async def sleeping() -> bool:
                return bool(
                    await superuser.fetchval(
                        "SELECT count(*) FROM pg_stat_activity"
                        " WHERE datname = $1 AND wait_event = 'PgSleep'",
                        databases.DATABASE,
                    )
                )

            await eventually(sleeping, timeout=2, interval=0.01)
            await revoke_in_sql(owner, tenant.key_id)
            response = await slow
            # It read the key before the revocation, and returned after the reconnection.
            assert response.status_code == 200, response.text
            assert await listeners(superuser) - {feed}
            await drop_slow_reads(owner)  # the next lookup need not wait

            await refused(live, tenant.headers)
    finally:
        if slow is not None and not slow.done():
            slow.cancel()
        await drop_slow_reads(owner)


@pytest.mark.backend("postgresql")
async def test_the_revoking_server_refuses_the_key_as_soon_as_the_revocation_returns(
    settings: Settings,
    db: Database,
    event_handlers: EventHandlers,
    admin: dict[str, str],
    superuser: Any,
) -> None:
    """It must not wait for its own notification, which races the DELETE's answer (seen
    losing ~2 times in 100 on localhost). The race is widened here: a proxy delivers what
    PostgreSQL sends on that server's feed 0.5 s late."""
    await count_listeners(superuser, 0)
    url = make_url(settings.database_url)
    assert url.host is not None
    async with TcpProxy(url.host, url.port or 5432) as proxy:
        proxied = url.set(port=proxy.port).render_as_string(hide_password=False)
        async with serving(
            settings.model_copy(update={"database_url": proxied}), event_handlers
        ) as (
            live,
            lookups,
        ):
            [feed] = await count_listeners(superuser, 1)
            tenant = await make_tenant(live.client, admin, "Acme")
            await warm(live, lookups, tenant.headers)
            port = await superuser.fetchval(
                "SELECT client_port FROM pg_stat_activity WHERE pid = $1", feed
            )
            proxy.slow(int(port), 0.5)

            response = await live.client.delete(
                f"/api/tenants/{tenant.id}/api-keys/{tenant.key_id}", headers=admin
            )
            assert response.status_code == 204, response.text
            await refused(live, tenant.headers)


@pytest.mark.backend("sqlite")
async def test_on_sqlite_a_key_revoked_in_the_database_is_refused_at_once(
    settings: Settings,
    db: Database,
    event_handlers: EventHandlers,
    admin: dict[str, str],
) -> None:
    async with serving(settings, event_handlers) as (live, lookups):
        tenant = await make_tenant(live.client, admin, "Acme")
        lookups.count = 0
        for _ in range(20):
            await authenticated(live, tenant.headers)
        assert lookups.count == 20  # no cache: every request reads its key
        async with db.autocommit() as connection:
            await connection.execute(
                update(ApiKey)
                .where(ApiKey.id == uuid.UUID(tenant.key_id))
                .values(revoked_at=utcnow())
            )
        await refused(live, tenant.headers)


def own_socket(local_port: int) -> socket.socket:
    """This process's TCP socket on `local_port`, found among its open descriptors."""
    for name in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):
            if not os.readlink(f"/proc/self/fd/{name}").startswith("socket:"):
                continue
            sock = socket.socket(fileno=os.dup(int(name)))
            tcp = sock.family in (socket.AF_INET, socket.AF_INET6)
            if tcp and sock.getsockname()[1] == local_port:
                return sock
            sock.close()
    raise AssertionError(f"no socket of this process on port {local_port}")


@pytest.mark.backend("postgresql")
async def test_the_feed_connection_sends_tcp_keepalives(backend: Backend, superuser: Any) -> None:
    await count_listeners(superuser, 0)
    cache = ApiKeyCache()
    await cache.start(backend.url)
    try:

        async def trusted() -> bool:
            return cache.trusted

        await eventually(trusted, timeout=3)
        [feed] = await count_listeners(superuser, 1)
        port = await superuser.fetchval(
            "SELECT client_port FROM pg_stat_activity WHERE pid = $1", feed
        )
        # A feed whose server vanished without a word would otherwise be trusted forever.
        with own_socket(port) as sock:
            assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) == 1
            assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE) == 30
            assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL) == 10
            assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT) == 3
    finally:
        await cache.close()
