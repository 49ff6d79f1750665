"""The checks `tenvoice doctor` runs, each one line: ok, warn or fail, and why.

Reachability reuses what `serve` checks before it starts (preflight); the doctor then says
more than preflight needs to: as which role, whether row-level security binds that role,
which revision the schema is at.
"""

import asyncio
import contextlib
import os
import socket
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

import asyncpg

from tenvoice.config import Settings, SettingsError, require_secrets_key, sqlite_path
from tenvoice.platform import metrics_process, preflight
from tenvoice.platform.db import asyncpg_dsn
from tenvoice.platform.migrate import revisions, schema_is_behind

OK, WARN, FAIL = "ok", "warn", "fail"
TIMEOUT = 3.0
OTLP_ENDPOINT = "OTEL_EXPORTER_OTLP_ENDPOINT"


@dataclass(frozen=True)
class Check:
    level: str
    name: str
    reason: str


def run_all(settings: Settings) -> list[Check]:
    checks = database(settings.database_url, preflight.DATABASE_URL)
    if settings.migration_database_url:
        checks.append(_reachable(settings.migration_database_url, preflight.MIGRATION_DATABASE_URL))
    checks += [secrets_key(settings), redis(settings.redis_url), otlp(), metrics(settings)]
    return checks


def database(url: str, setting: str) -> list[Check]:
    reachable = _reachable(url, setting)
    if reachable.level == FAIL:
        return [reachable]
    if sqlite_path(url) is not None or url.startswith("sqlite"):
        return [reachable, migrations(_sqlite_revision(url))]
    return asyncio.run(_postgresql(url))


def _reachable(url: str, setting: str) -> Check:
    try:
        preflight.database_reachable(url, setting)
    except preflight.StartupError as exc:
        return Check(FAIL, "database", str(exc))
    return Check(OK, "database", f"{setting} reachable")


def _sqlite_revision(url: str) -> str | None:
    path = sqlite_path(url)
    if path is None or not path.exists():
        return None
    # Read-only: looking must not create the file.
    with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as connection:
        try:
            row = connection.execute("SELECT version_num FROM alembic_version").fetchone()
        except sqlite3.OperationalError:
            return None
    return str(row[0]) if row else None


async def _postgresql(url: str) -> list[Check]:
    connection = await asyncpg.connect(asyncpg_dsn(url), timeout=preflight.CONNECT_TIMEOUT)
    try:
        role = await connection.fetchrow(
            "SELECT current_user AS name, rolsuper, rolbypassrls, current_setting("
            "'server_version') AS version FROM pg_roles WHERE rolname = current_user"
        )
        try:
            revision = await connection.fetchval("SELECT version_num FROM alembic_version")
        except asyncpg.UndefinedTableError:
            revision = None
        except asyncpg.InsufficientPrivilegeError:
            return [
                Check(OK, "database", f"reachable as {role['name']}"),
                Check(FAIL, "migrations", f"{role['name']} may not read the schema's tables"),
            ]
    finally:
        await connection.close()
    found = Check(OK, "database", f"PostgreSQL {role['version']}, reachable as {role['name']}")
    return [found, rls_binds(role["name"], role["rolsuper"], role["rolbypassrls"]),
            migrations(revision)]  # fmt: skip


def rls_binds(name: str, superuser: bool, bypass: bool) -> Check:
    if superuser or bypass:
        what = "a superuser" if superuser else "BYPASSRLS"
        return Check(
            WARN,
            "role",
            f"{name} is {what}: row-level security does not bind it; run the service "
            "as a role that neither owns the tables nor bypasses RLS (README, production)",
        )
    return Check(OK, "role", f"{name} is neither superuser nor BYPASSRLS: row-level security binds")


def migrations(revision: str | None) -> Check:
    head, known = revisions()
    if revision is None:
        return Check(FAIL, "migrations", "not migrated; run `tenvoice migrate`")
    if schema_is_behind(revision):
        return Check(
            FAIL, "migrations", f"at {revision}, behind this build's {head}; run `tenvoice migrate`"
        )
    if revision not in known:
        return Check(WARN, "migrations", f"at {revision}, which this build does not know (newer)")
    return Check(OK, "migrations", f"at head {revision}")


def secrets_key(settings: Settings) -> Check:
    if not settings.secrets_key and settings.is_sqlite:
        return Check(OK, "secrets key", "embedded set-up: generated beside the database")
    try:
        require_secrets_key(settings.secrets_key)
    except SettingsError as exc:
        return Check(FAIL, "secrets key", str(exc))
    return Check(OK, "secrets key", "set")


def redis(url: str | None) -> Check:
    if not url:
        return Check(OK, "redis", "not configured: each process counts its rate limits alone")
    import redis as redis_client

    where = _where(url)
    try:
        client = redis_client.Redis.from_url(
            url, socket_connect_timeout=TIMEOUT, socket_timeout=TIMEOUT
        )
        with contextlib.closing(client):
            client.ping()
    except redis_client.RedisError as exc:
        return Check(FAIL, "redis", f"{where} does not answer PING ({_reason(exc)})")
    return Check(OK, "redis", f"{where} answers PING")


def otlp(environ: Callable[[str], str | None] = os.environ.get) -> Check:
    endpoint = environ(OTLP_ENDPOINT)
    if not endpoint:
        return Check(OK, "otlp", f"{OTLP_ENDPOINT} unset: tracing off")
    parts = urlsplit(endpoint if "://" in endpoint else f"http://{endpoint}")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    where = f"{parts.hostname}:{port}"
    try:
        with socket.create_connection((parts.hostname or "", port), timeout=TIMEOUT):
            pass
    except OSError as exc:
        return Check(
            FAIL, "otlp", f"{where} ({OTLP_ENDPOINT}) does not accept connections ({_reason(exc)})"
        )
    return Check(OK, "otlp", f"{where} ({OTLP_ENDPOINT}) accepts connections")


def metrics(settings: Settings) -> Check:
    path = metrics_process.directory()
    if path is None:
        where = "`tenvoice serve` makes a private directory for each run"
    elif not path.is_dir() or not os.access(path, os.W_OK):
        return Check(FAIL, "metrics", f"{metrics_process.ENV}={path} is not a writable directory")
    else:
        where = f"{metrics_process.ENV}={path} (empty it before `serve` starts)"
    if not settings.metrics_token:
        return Check(WARN, "metrics", f"/metrics is open (no METRICS_TOKEN); {where}")
    return Check(OK, "metrics", f"/metrics needs the token; {where}")


def _where(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.hostname}:{parts.port or 6379}"


def _reason(error: BaseException) -> str:
    text = " ".join(str(error).split())
    if "refused" in text.lower():
        return "connection refused"
    if isinstance(error, TimeoutError | socket.timeout) or "timed out" in text.lower():
        return f"no answer within {TIMEOUT:g} s"
    return text or type(error).__name__
