"""What `tenvoice` checks before it starts: a setting, database or port it cannot use.

Each failure is a StartupError whose text is one sentence saying what is wrong and what
fixes it; the command line prints it instead of a traceback, or instead of starting a
server that could only answer 503 or a worker that could only log its failures.
"""

import asyncio
import contextlib
import errno
import re
import socket
import sqlite3

import asyncpg
from pydantic import ValidationError
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from tenvoice.config import sqlite_path
from tenvoice.platform.db import asyncpg_dsn
from tenvoice.platform.migrate import revisions, schema_is_behind

DATABASE_URL = "TENVOICE_DATABASE_URL"
MIGRATION_DATABASE_URL = "TENVOICE_MIGRATION_DATABASE_URL"
CONNECT_TIMEOUT = 10.0
_SUPPORTED = {"sqlite": ("", "aiosqlite"), "postgresql": ("", "asyncpg"), "postgres": ("",)}
_EXAMPLES = "sqlite:///path/to/file.db or postgresql://user:password@host:5432/database"
_MIGRATE = "run `tenvoice migrate`"


class StartupError(Exception):
    """Why a command cannot start, as one sentence for the operator."""


def masked(url: str) -> str:
    """The URL with its password hidden: everything between the user's colon and the last @,
    and a `password=` query parameter (asyncpg reads one)."""
    url = re.sub(r"^([^:/]+://[^:/@]*):.*@", r"\1:***@", url.replace("\n", " "))
    return re.sub(r"([?&]password=)[^&]*", r"\1***", url)


def settings_error(error: ValidationError) -> StartupError:
    problem = error.errors()[0]
    name = "TENVOICE_" + "_".join(str(part) for part in problem["loc"]).upper()
    return StartupError(f"{name} is invalid ({problem['msg']}); correct it or unset it")


def database_ready(url: str, setting: str = DATABASE_URL) -> None:
    """The database answers and `tenvoice migrate` has brought it up to this build."""
    _check_database(url, setting, migrated=True)


def database_reachable(url: str, setting: str = DATABASE_URL) -> None:
    """The database answers (what `tenvoice migrate` needs; the schema may be empty)."""
    _check_database(url, setting, migrated=False)


def port_free(host: str, port: int) -> None:
    """Nothing else listens on host:port.

    Bound as uvicorn binds (SO_REUSEADDR), then released for uvicorn to bind again: a socket
    handed over by file descriptor would be taken for a Unix socket by uvicorn, and the TCP
    connections it accepts would lose TCP_NODELAY. With --workers N, uvicorn binds once in
    the parent, so one test covers every worker process.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                reason, fix = "already in use", "stop what holds it or choose another --port"
            else:
                reason, fix = _reason(exc), "check --host and --port"
            raise StartupError(f"cannot listen on {host}:{port} ({reason}); {fix}") from None


def _check_database(url: str, setting: str, *, migrated: bool) -> None:
    parsed = _parse(url, setting)
    if parsed.drivername.startswith("sqlite"):
        _check_sqlite(url, setting, migrated=migrated)
    else:
        asyncio.run(_check_postgresql(url, parsed, setting, migrated=migrated))


def _parse(url: str, setting: str) -> URL:
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):
        raise StartupError(
            f"{setting} is not a database URL ({masked(url)}); use {_EXAMPLES}"
        ) from None
    backend, _, driver = parsed.drivername.partition("+")
    if driver not in _SUPPORTED.get(backend, ()):
        raise StartupError(
            f"{setting} names a database tenvoice does not support ({parsed.drivername}://); "
            f"use {_EXAMPLES}"
        )
    return parsed


def _check_sqlite(url: str, setting: str, *, migrated: bool) -> None:
    path = sqlite_path(url)
    if path is not None and not path.parent.is_dir():
        raise StartupError(
            f"the directory {path.parent} of the SQLite database in {setting} does not exist; "
            f"create it or set {setting}"
        )
    if not migrated:
        return
    if path is None or not path.exists():
        raise StartupError(f"the database at {masked(url)} has not been migrated; {_MIGRATE}")
    try:
        # Opened only once it exists: connecting would otherwise create an empty file.
        with contextlib.closing(sqlite3.connect(path)) as connection:
            row = connection.execute("SELECT version_num FROM alembic_version").fetchone()
    except sqlite3.OperationalError as exc:
        if "no such table" in str(exc):
            raise StartupError(
                f"the database at {masked(url)} has not been migrated; {_MIGRATE}"
            ) from None
        raise StartupError(f"cannot open the SQLite database {path} ({exc})") from None
    except sqlite3.DatabaseError as exc:
        raise StartupError(
            f"{path} is not a tenvoice SQLite database ({exc}); set {setting} to the right file"
        ) from None
    _check_version(url, row[0] if row else None)


async def _check_postgresql(url: str, parsed: URL, setting: str, *, migrated: bool) -> None:
    where = f"the database at {masked(url)}"
    try:
        connection = await asyncpg.connect(asyncpg_dsn(url), timeout=CONNECT_TIMEOUT)
    except asyncpg.InvalidCatalogNameError:
        raise StartupError(
            f"{where} does not exist; create it (createdb {parsed.database}) or set {setting}"
        ) from None
    except (asyncpg.InvalidAuthorizationSpecificationError, asyncpg.InvalidPasswordError) as exc:
        raise StartupError(
            f"{where} refused the login ({_reason(exc)}); check the user and password in {setting}"
        ) from None
    except (OSError, TimeoutError, asyncpg.CannotConnectNowError) as exc:
        raise StartupError(
            f"{where} is unreachable ({_reason(exc)}); start it or set {setting}"
        ) from None
    except (asyncpg.PostgresError, asyncpg.InterfaceError, ValueError) as exc:
        raise StartupError(
            f"{where} refused the connection ({_reason(exc)}); check {setting}"
        ) from None
    try:
        if migrated:
            try:
                version = await connection.fetchval("SELECT version_num FROM alembic_version")
            except asyncpg.UndefinedTableError:
                version = None
            except asyncpg.InsufficientPrivilegeError as exc:
                raise StartupError(
                    f"{where} does not let this user read its tables ({_reason(exc)}); run "
                    "`tenvoice migrate` with TENVOICE_DATABASE_APP_ROLE naming this user's role"
                ) from None
            _check_version(url, version)
    finally:
        await connection.close()


def _check_version(url: str, version: str | None) -> None:
    if version is None:
        raise StartupError(f"the database at {masked(url)} has not been migrated; {_MIGRATE}")
    if schema_is_behind(version):
        head, _ = revisions()
        raise StartupError(
            f"the database at {masked(url)} is at migration {version}, behind this build's "
            f"{head}; {_MIGRATE}"
        )


def _reason(error: BaseException) -> str:
    if isinstance(error, ConnectionRefusedError) or "refused" in str(error).lower():
        return "connection refused"
    if isinstance(error, socket.gaierror):
        return "no such host"
    if isinstance(error, TimeoutError):
        return f"no answer within {CONNECT_TIMEOUT:g} s"
    if isinstance(error, OSError) and error.strerror:
        return error.strerror.lower()
    text = " ".join(str(error).split())
    return text or type(error).__name__
