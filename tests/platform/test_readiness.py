"""/readyz says why it is not ready, on each database: one that does not answer
(`database_unreachable`) and one that answers but was never migrated
(`database_not_migrated`). test_operations.py has a closed PostgreSQL port and an empty
SQLite file; these are the other two."""

from pathlib import Path

import httpx
import pytest

from tenvoice.config import Settings
from tenvoice.main import create_app
from tenvoice.platform.db import Database
from tests import databases
from tests.problems import assert_problem


async def readyz(settings: Settings, db: Database) -> httpx.Response:
    app = create_app(settings, db=db)
    transport = httpx.ASGITransport(app=app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://tenvoice.test") as c:
            return await c.get("/readyz")
    finally:
        await db.dispose()


@pytest.mark.backend("sqlite")
async def test_readyz_is_503_when_the_sqlite_file_cannot_be_opened(
    settings: Settings, tmp_path: Path
) -> None:
    missing = Database(f"sqlite:///{tmp_path / 'no' / 'such' / 'dir' / 'tenvoice.db'}")
    problem = assert_problem(await readyz(settings, missing), 503, "database_unreachable")
    assert str(tmp_path) not in problem["detail"]


@pytest.mark.backend("postgresql")
async def test_readyz_is_503_on_an_empty_postgresql_database(
    settings: Settings, postgres: tuple[str, str]
) -> None:
    name = f"{databases.DATABASE}_empty"
    _, app_url = await databases.create_scratch(name)
    try:
        response = await readyz(settings, Database(app_url))
    finally:
        await databases.drop_scratch(name)
    problem = assert_problem(response, 503, "database_not_migrated")
    assert "tenvoice migrate" in problem["detail"]
