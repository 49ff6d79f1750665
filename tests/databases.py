"""Real databases for the tests: a migrated SQLite template, and a PostgreSQL database owned
by a non-superuser and used through a second role that neither owns the tables nor bypasses
row-level security (the production set-up of the README)."""

import asyncio
import contextlib
import os
import shutil
import sqlite3
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import asyncpg

from tenvoice.config import sqlite_path
from tenvoice.platform.migrate import upgrade

T = TypeVar("T")

BOOTSTRAP_URL = os.environ.get(
    "TENVOICE_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
REQUIRE_POSTGRES = os.environ.get("TENVOICE_TEST_REQUIRE_POSTGRES", "") not in ("", "0")
# Concurrent runs on one server (CI beside a developer) each name their own database.
DATABASE = os.environ.get("TENVOICE_TEST_POSTGRES_DB", "tenvoice_test")
OWNER = "tenvoice_test_owner"
APP_ROLE = "tenvoice_test_app"
TABLES = (
    "idempotency_keys",
    "inbox_messages",
    "outbox_jobs",
    "payment_routes",
    "payments",
    "webhook_attempts",
    "webhook_deliveries",
    "webhook_subscriptions",
    "webhook_endpoints",
    "events",
    "invoice_number_counters",
    "invoice_items",
    "invoices",
    "customers",
    "api_keys",
    "tenants",
)


def in_thread(factory: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a coroutine to completion on a private loop, away from the test loop."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(lambda: asyncio.run(factory())).result()


def sqlite_template(directory: Path) -> Path:
    path = directory / "template.db"
    upgrade(f"sqlite:///{path}", APP_ROLE)
    return path


def sqlite_copy(template: Path, directory: Path) -> str:
    target = directory / "tenvoice.db"
    shutil.copyfile(template, target)
    return f"sqlite:///{target}"


def _url(role: str, database: str, bootstrap_url: str = BOOTSTRAP_URL) -> str:
    host = bootstrap_url.split("@", 1)[1].split("/", 1)[0]
    return f"postgresql://{role}@{host}/{database}"


async def _bootstrap(bootstrap_url: str, database: str) -> None:
    admin = await asyncpg.connect(bootstrap_url, timeout=5)
    try:
        for role, extra in ((OWNER, ""), (APP_ROLE, "")):
            exists = await admin.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", role)
            verb = "ALTER" if exists else "CREATE"
            await admin.execute(
                f"{verb} ROLE {role} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS{extra}"
            )
        await admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1", database
        )
        await admin.execute(f"DROP DATABASE IF EXISTS {database}")
        await admin.execute(f"CREATE DATABASE {database} OWNER {OWNER}")
    finally:
        await admin.close()


def postgres_urls(bootstrap_url: str = BOOTSTRAP_URL, database: str = DATABASE) -> tuple[str, str]:
    """(owner URL, service URL) of a freshly migrated test database on that server."""
    in_thread(lambda: _bootstrap(bootstrap_url, database))
    owner_url = _url(OWNER, database, bootstrap_url)
    app_url = _url(APP_ROLE, database, bootstrap_url)
    with ThreadPoolExecutor(1) as pool:
        pool.submit(upgrade, owner_url, APP_ROLE).result()
    return owner_url, app_url


async def truncate(owner_url: str) -> None:
    connection = await asyncpg.connect(owner_url)
    try:
        await connection.execute(f"TRUNCATE {', '.join(TABLES)} CASCADE")
    finally:
        await connection.close()


def superuser_url(database: str = DATABASE) -> str:
    """The bootstrap superuser on `database`: reads past row-level security."""
    return f"{BOOTSTRAP_URL.rsplit('/', 1)[0]}/{database}"


async def create_scratch(database: str) -> tuple[str, str]:
    """(owner URL, service URL) of a new, empty database beside the test one (roles exist)."""
    admin = await asyncpg.connect(BOOTSTRAP_URL, timeout=5)
    try:
        await admin.execute(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")
        await admin.execute(f"CREATE DATABASE {database} OWNER {OWNER}")
    finally:
        await admin.close()
    return _url(OWNER, database), _url(APP_ROLE, database)


async def drop_scratch(database: str) -> None:
    admin = await asyncpg.connect(BOOTSTRAP_URL, timeout=5)
    try:
        await admin.execute(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")
    finally:
        await admin.close()


async def every_value(url: str) -> str:
    """Every row of every table, as text: a secret that is nowhere in it is not stored.

    `url` is a `sqlite:///` file, or a PostgreSQL URL that sees every row (superuser_url)."""
    path = sqlite_path(url)
    if path is not None:
        with contextlib.closing(sqlite3.connect(path)) as connection:
            tables = connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
            return "\n".join(
                repr(connection.execute(f'SELECT * FROM "{name}"').fetchall())
                for (name,) in tables.fetchall()
            )
    connection = await asyncpg.connect(url)
    try:
        tables = await connection.fetch(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"
        )
        rows = [await connection.fetch(f'SELECT * FROM "{t}"') for (t,) in tables]
        return "\n".join(repr([tuple(row.values()) for row in each]) for each in rows)
    finally:
        await connection.close()
