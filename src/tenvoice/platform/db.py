"""Engines, sessions and column types shared by SQLite (embedded) and PostgreSQL (production)."""

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import asyncpg
import orjson
from sqlalchemy import JSON, BigInteger, DateTime, MetaData, Uuid, event
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect, ExceptionContext, make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.pool import ConnectionPoolEntry
from sqlalchemy.types import TypeDecorator

from tenvoice.platform import tenancy, tracing


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes on both databases (SQLite keeps no zone of its own)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)

    def result_processor(self, dialect: Dialect, coltype: object) -> Any:
        # asyncpg already returns timestamptz as an aware UTC datetime; skipping the per-value
        # call matters on list pages, which read seven timestamps per invoice.
        if dialect.driver == "asyncpg":
            return None
        return super().result_processor(dialect, coltype)


class ScaledDecimal(TypeDecorator[Decimal]):
    """An exact Decimal stored as a scaled integer (`Decimal("1.5")` at scale 4 is 15000).

    Integers compare, sum and index identically on SQLite and PostgreSQL; SQLite has no
    exact decimal type of its own.
    """

    impl = BigInteger
    cache_ok = True

    def __init__(self, scale: int) -> None:
        super().__init__()
        self.scale = scale

    def process_bind_param(self, value: Decimal | None, dialect: Dialect) -> int | None:
        if value is None:
            return None
        scaled = value.scaleb(self.scale)
        if scaled != scaled.to_integral_value():
            raise ValueError(f"more than {self.scale} decimal places")
        return int(scaled)

    def process_result_value(self, value: int | None, dialect: Dialect) -> Decimal | None:
        return None if value is None else Decimal(value).scaleb(-self.scale)


def utcnow() -> datetime:
    return datetime.now(UTC)


# JSON on SQLite, binary JSONB on PostgreSQL.
JSON_DOCUMENT = JSON().with_variant(JSONB(), "postgresql")


class Base(DeclarativeBase):
    metadata = MetaData(
        naming_convention={
            "ix": "ix_%(table_name)s_%(column_0_N_name)s",
            "uq": "uq_%(table_name)s_%(column_0_N_name)s",
            "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
            "pk": "pk_%(table_name)s",
            "ck": "ck_%(table_name)s_%(constraint_name)s",
        }
    )
    type_annotation_map = {  # noqa: RUF012 (SQLAlchemy reads it as a class attribute)
        uuid.UUID: Uuid(),
        datetime: UTCDateTime(),
        dict[str, Any]: JSON_DOCUMENT,
        dict[str, str]: JSON_DOCUMENT,
    }


class WriteSession(AsyncSession):
    """A session for commands: on SQLite its transactions take the write lock up front.

    `writer` is the process's SQLite writer queue (None on PostgreSQL): the unit of work holds
    it for the length of its transaction.
    """

    writer: asyncio.Lock | None = None


class ReadSession(AsyncSession):
    """A session for queries only; it may point at a replica."""


def async_url(url: str) -> str:
    if url.startswith("sqlite:"):
        return "sqlite+aiosqlite:" + url[len("sqlite:") :]
    for prefix in ("postgresql:", "postgres:"):
        if url.startswith(prefix):
            return "postgresql+asyncpg:" + url[len(prefix) :]
    return url


def asyncpg_dsn(url: str) -> str:
    """A PostgreSQL URL as asyncpg's own connect() takes it (no SQLAlchemy driver suffix)."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def json_text(value: object) -> str:
    # As the API writes JSON (platform/http.py WireJSON), so that a snapshot of an entity
    # stored in the event log reads back exactly as GET returned it.
    return orjson.dumps(value, default=_uuid_text, option=orjson.OPT_UTC_Z).decode()


def _uuid_text(value: object) -> str:
    # asyncpg's UUID subclass is not one orjson encodes by itself.
    if isinstance(value, uuid.UUID):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON")


def make_engine(url: str, *, pool_size: int = 10, write: bool = True) -> AsyncEngine:
    url = async_url(url)
    if url.startswith("sqlite"):
        engine = create_async_engine(
            url,
            json_serializer=json_text,
            json_deserializer=orjson.loads,
            pool_size=pool_size,
            # A database error's text (logged, and kept as a job's last error) leaves out
            # the statement's values: customers' details, sealed signing secrets and key
            # hashes have no place in a log line.
            hide_parameters=True,
        )
        _configure_sqlite(engine, begin="BEGIN IMMEDIATE" if write else "BEGIN")
        return engine
    engine = create_async_engine(
        url,
        json_serializer=json_text,
        json_deserializer=orjson.loads,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=False,
        connect_args={"connection_class": tenancy.TenantBoundConnection},
        hide_parameters=True,  # as above
    )

    @event.listens_for(engine.sync_engine, "checkin")
    def _on_checkin(_dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
        tenancy.forget_pending_tenant(record.driver_connection)

    event.listen(engine.sync_engine, "handle_error", _unavailable_is_operational)
    return engine


# SQLSTATE classes of a server that is going away, starting up or out of room: connection
# exception, insufficient resources, operator intervention (shutdown, cannot connect now).
_UNAVAILABLE_SQLSTATES = ("08", "53", "57P")


def database_unavailable(error: BaseException | None) -> bool:
    """Whether the error says the server (or the connection to it) failed, rather than the
    statement: the same request may well succeed in a moment."""
    while error is not None:
        if isinstance(error, OSError | asyncpg.InterfaceError | asyncpg.InternalClientError):
            return True  # refused, reset, closed mid-operation, protocol left mid-way
        sqlstate = getattr(error, "sqlstate", None)
        if isinstance(sqlstate, str) and sqlstate.startswith(_UNAVAILABLE_SQLSTATES):
            return True
        error = error.__cause__
    return False


def _unavailable_is_operational(context: ExceptionContext) -> OperationalError | None:
    """asyncpg reports a server shutting down or starting up as a generic error, and a
    connection it lost mid-statement sometimes as an internal one. Such a connection is
    unusable: it is invalidated (the pool's other connections with it, since they share its
    server) rather than reused, and the error surfaces as what it is, an OperationalError,
    which the edge answers with 503."""
    if not (context.is_disconnect or database_unavailable(context.original_exception)):
        return None
    context.is_disconnect = True
    if isinstance(context.sqlalchemy_exception, OperationalError):
        return None
    return OperationalError(
        context.statement,
        context.parameters,
        context.original_exception,
        connection_invalidated=True,
    )


def _configure_sqlite(engine: AsyncEngine, *, begin: str) -> None:
    # pysqlite's own transaction handling defers BEGIN and cannot take the write lock up
    # front; we turn it off and emit BEGIN ourselves
    # (https://docs.sqlalchemy.org/en/20/dialects/sqlite.html#serializable-isolation-savepoints-transactional-ddl).
    # A writer that starts with BEGIN IMMEDIATE waits on busy_timeout instead of failing
    # with "database is locked" when it upgrades a read lock mid-transaction.
    sync_engine = engine.sync_engine

    @event.listens_for(sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        for pragma in (
            "PRAGMA journal_mode=WAL",
            "PRAGMA synchronous=NORMAL",
            "PRAGMA busy_timeout=30000",
            "PRAGMA foreign_keys=ON",
        ):
            cursor.execute(pragma)
        cursor.close()

    @event.listens_for(sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql(begin)


class Database:
    """The process's engines and session factories; read and write sessions are distinct types."""

    def __init__(self, url: str, *, pool_size: int = 10, read_url: str | None = None) -> None:
        self.url = url
        self.dialect = "sqlite" if url.startswith("sqlite") else "postgresql"
        self.write_engine = make_engine(url, pool_size=pool_size, write=True)
        # SQLite takes one writer at a time. Left to itself, every other writer sleeps and
        # retries on busy_timeout (up to 100 ms a nap, in no order), which stretched p99 to a
        # second or two; queued here, a process's writers take turns in order, without naps.
        self.sqlite_writer = asyncio.Lock() if self.dialect == "sqlite" else None
        if read_url is None and self.dialect == "postgresql":
            self.read_engine = self.write_engine
        else:
            self.read_engine = make_engine(read_url or url, pool_size=pool_size, write=False)
        self._writes = async_sessionmaker(
            self.write_engine,
            class_=WriteSession,
            sync_session_class=tenancy.TenantSession,
            expire_on_commit=False,
            autoflush=False,
        )
        self._reads = async_sessionmaker(
            self.read_engine,
            class_=ReadSession,
            sync_session_class=tenancy.TenantSession,
            expire_on_commit=False,
            autoflush=False,
        )

    @asynccontextmanager
    async def write(self, tenant_id: uuid.UUID | None = None) -> AsyncIterator[WriteSession]:
        # Where a request or job first acts in its tenant: the one place its span learns it.
        tracing.annotate_tenant(tenant_id)
        async with self._writes() as session:
            tenancy.bind_session(session.sync_session, tenant_id)
            session.writer = self.sqlite_writer
            yield session

    @asynccontextmanager
    async def read(self, tenant_id: uuid.UUID | None = None) -> AsyncIterator[ReadSession]:
        tracing.annotate_tenant(tenant_id)
        async with self._reads() as session:
            tenancy.bind_session(session.sync_session, tenant_id)
            yield session

    @asynccontextmanager
    async def lookup(self, *, primary: bool = False) -> AsyncIterator[AsyncConnection]:
        """A connection outside any transaction, for single reads of platform tables.

        Authentication runs one indexed SELECT per request; in autocommit it costs one round
        trip instead of BEGIN, SELECT and ROLLBACK. It carries no tenant, and tenant-owned
        tables are not read through it. `primary` reads what was just written elsewhere,
        never a replica's lagging copy (SQLite has no replica, and its write engine would
        take the write lock).
        """
        engine = self.write_engine if primary and self.dialect == "postgresql" else None
        async with (engine or self.read_engine).connect() as connection:
            if self.dialect == "postgresql":
                # SQLite's BEGIN is issued by our own hook and costs no round trip.
                connection = await connection.execution_options(isolation_level="AUTOCOMMIT")
            yield connection

    @asynccontextmanager
    async def autocommit(self) -> AsyncIterator[AsyncConnection]:
        """A write connection for single statements on platform tables, each its own commit.

        On PostgreSQL it runs in autocommit: one round trip per statement, no BEGIN/COMMIT.
        On SQLite it is one write transaction (BEGIN IMMEDIATE) committed on leaving.
        """
        if self.dialect == "postgresql":
            async with self.write_engine.connect() as connection:
                yield await connection.execution_options(isolation_level="AUTOCOMMIT")
        else:
            assert self.sqlite_writer is not None
            async with self.sqlite_writer, self.write_engine.begin() as connection:
                yield connection

    async def dispose(self) -> None:
        await self.write_engine.dispose()
        if self.read_engine is not self.write_engine:
            await self.read_engine.dispose()
