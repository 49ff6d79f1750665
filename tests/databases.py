"""Real databases for the tests: a migrated SQLite template, and a PostgreSQL database owned
by a non-superuser and used through a second role that neither owns the tables nor bypasses
row-level security (the production set-up of the README)."""

import asyncio
import os
import shutil
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import asyncpg

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
    "timeline_events",
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


def _url(role: str, database: str) -> str:
    host = BOOTSTRAP_URL.split("@", 1)[1].split("/", 1)[0]
    return f"postgresql://{role}@{host}/{database}"


async def _bootstrap() -> None:
    admin = await asyncpg.connect(BOOTSTRAP_URL, timeout=5)
    try:
        for role, extra in ((OWNER, ""), (APP_ROLE, "")):
            exists = await admin.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", role)
            verb = "ALTER" if exists else "CREATE"
            await admin.execute(
                f"{verb} ROLE {role} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS{extra}"
            )
        await admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1", DATABASE
        )
        await admin.execute(f"DROP DATABASE IF EXISTS {DATABASE}")
        await admin.execute(f"CREATE DATABASE {DATABASE} OWNER {OWNER}")
    finally:
        await admin.close()


def postgres_urls() -> tuple[str, str]:
    """(owner URL, service URL) of a freshly migrated test database."""
    in_thread(_bootstrap)
    owner_url, app_url = _url(OWNER, DATABASE), _url(APP_ROLE, DATABASE)
    with ThreadPoolExecutor(1) as pool:
        pool.submit(upgrade, owner_url, APP_ROLE).result()
    return owner_url, app_url


async def truncate(owner_url: str) -> None:
    connection = await asyncpg.connect(owner_url)
    try:
        await connection.execute(f"TRUNCATE {', '.join(TABLES)} CASCADE")
    finally:
        await connection.close()


async def scratch_database(name: str) -> str:
    """An empty database `name` (dropped first if it exists), owned by the owner role; the
    owner's URL to it. Roles are those of postgres_urls, which must have run."""
    admin = await asyncpg.connect(BOOTSTRAP_URL, timeout=5)
    try:
        await drop_scratch(name, admin)
        await admin.execute(f"CREATE DATABASE {name} OWNER {OWNER}")
    finally:
        await admin.close()
    return _url(OWNER, name)


async def drop_scratch(name: str, admin: asyncpg.Connection | None = None) -> None:
    connection = admin or await asyncpg.connect(BOOTSTRAP_URL, timeout=5)
    try:
        await connection.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    finally:
        if admin is None:
            await connection.close()
