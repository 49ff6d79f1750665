"""The hand-written migrations and the ORM models describe the same schema."""

from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection

import tenvoice.main  # noqa: F401  (imports every model onto the metadata)
from tenvoice.platform.db import Base, Database


def _differences(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return [
        diff
        for diff in compare_metadata(context, Base.metadata)
        # SQLite reports DateTime(timezone=True) and JSONB variants loosely; types are
        # compared on PostgreSQL, where they are exact.
        if not (connection.dialect.name == "sqlite" and diff[0][0] == "modify_type")
    ]


async def test_migrated_schema_matches_the_models(db: Database) -> None:
    async with db.write_engine.connect() as connection:
        differences = await connection.run_sync(_differences)
    assert differences == []
