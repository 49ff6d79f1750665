"""Migration 0004 on a database that ran the earlier code: no stored secret survives it, and
no row a tenant owned (rather than a credential) can be replayed after it."""

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import asyncpg
import orjson
import pytest
from alembic import command
from sqlalchemy import insert, select

from tenvoice.platform.db import Database, utcnow
from tenvoice.platform.idempotency import COMPLETED, IN_FLIGHT, WITHHELD, IdempotencyKey
from tenvoice.platform.migrate import alembic_config, upgrade
from tests import databases
from tests.conftest import Backend

SECRET = "tv_sk_" + "Q" * 43
TENANT = str(uuid.uuid4())


@pytest.fixture
async def empty_url(backend: Backend, tmp_path: Path) -> AsyncIterator[str]:
    """A database of its own, with no schema yet."""
    if backend.name == "sqlite":
        yield f"sqlite:///{tmp_path / 'before-0004.db'}"
        return
    assert backend.owner_url is not None
    name = f"{databases.DATABASE}_m0004"
    admin = await asyncpg.connect(databases.BOOTSTRAP_URL)
    try:
        await admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        await admin.execute(f"CREATE DATABASE {name} OWNER {databases.OWNER}")
        yield f"{backend.owner_url.rsplit('/', 1)[0]}/{name}"
    finally:
        await admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        await admin.close()


def _row(scope: str, key: str, status: str, body: bytes | None) -> dict[str, Any]:
    now = utcnow()
    return {
        "scope": scope,
        "key": key,
        "fingerprint": "0" * 64,
        "status": status,
        "response_status": None if body is None else 201,
        "response_headers": None if body is None else [["content-type", "application/json"]],
        "response_body": body,
        "created_at": now,
        "locked_until": now + timedelta(seconds=60),
    }


# What the earlier code left behind: the admin's and tenants' rows, some holding a new key.
BEFORE = [
    _row("admin", "new-key", COMPLETED, orjson.dumps({"id": "k1", "key": SECRET})),
    _row("admin", "tenant", COMPLETED, b'{"id":"t1","name":"Initech"}'),
    # Not a secret: the prefix's "_" must match itself, not any character.
    _row("admin", "look-alike", COMPLETED, b'{"note":"tv-sk-not-a-key"}'),
    _row("admin", "running", IN_FLIGHT, None),
    _row(TENANT, "customer", COMPLETED, b'{"id":"c1"}'),
    _row(TENANT, "key-as-tenant", COMPLETED, orjson.dumps({"key": SECRET})),
]


async def _rows(url: str) -> dict[str, dict[str, Any]]:
    db = Database(url)
    try:
        async with db.autocommit() as connection:
            result = await connection.execute(select(IdempotencyKey.__table__))
            return {row.key: row._asdict() for row in result}
    finally:
        await db.dispose()


async def _insert(url: str, rows: list[dict[str, Any]]) -> None:
    db = Database(url)
    try:
        async with db.autocommit() as connection:
            await connection.execute(insert(IdempotencyKey), rows)
    finally:
        await db.dispose()


async def _migrate(url: str, revision: str) -> None:
    # Alembic runs its own event loop (migrations/env.py), so it runs beside this one.
    await asyncio.to_thread(upgrade, url, databases.APP_ROLE, revision)


async def test_0004_withholds_stored_secrets_and_drops_tenant_owned_keys(empty_url: str) -> None:
    await _migrate(empty_url, "0003")
    await _insert(empty_url, BEFORE)

    await _migrate(empty_url, "0004")

    after = await _rows(empty_url)
    assert set(after) == {"new-key", "tenant", "look-alike", "running"}
    withheld = after["new-key"]
    assert withheld["status"] == WITHHELD
    assert withheld["response_headers"] is None
    assert b"shown only once" in withheld["response_body"]
    assert b"tv_sk_" not in withheld["response_body"]
    for untouched in ("tenant", "look-alike", "running"):
        planted = next(row for row in BEFORE if row["key"] == untouched)
        assert after[untouched]["status"] == planted["status"]
        assert after[untouched]["response_body"] == planted["response_body"]
    assert not any(b"tv_sk_" in (row["response_body"] or b"") for row in after.values())


async def test_0004_downgrade_drops_what_the_earlier_code_cannot_read(empty_url: str) -> None:
    await _migrate(empty_url, "0003")
    await _insert(empty_url, BEFORE)
    await _migrate(empty_url, "0004")
    await _insert(empty_url, [_row(f"key:{uuid.uuid4()}", "by-key", COMPLETED, b"{}")])

    config = alembic_config(empty_url)
    config.attributes["app_role"] = databases.APP_ROLE
    await asyncio.to_thread(command.downgrade, config, "0003")

    assert set(await _rows(empty_url)) == {"tenant", "look-alike", "running"}
