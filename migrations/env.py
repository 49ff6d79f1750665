"""Alembic environment: async engines for both databases; grants for the service role."""

import asyncio
import logging

from alembic import context
from sqlalchemy import Connection, text
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from tenvoice.platform.db import Base, async_url

log = logging.getLogger("tenvoice.migrate")
config = context.config


def _migrate(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=Base.metadata, compare_type=True)
    with context.begin_transaction():
        context.run_migrations()
    if connection.dialect.name == "postgresql":
        _grant_service_role(connection, config.attributes.get("app_role", "tenvoice_app"))
        connection.commit()


def _grant_service_role(connection: Connection, role: str) -> None:
    """Give the service role table privileges (creating it when we may).

    The service should connect as this role, or a login role in it: it is neither owner nor
    superuser, so row-level security binds it (README, production set-up).
    """
    exists = connection.scalar(text("SELECT 1 FROM pg_roles WHERE rolname = :r"), {"r": role})
    if not exists:
        can_create = connection.scalar(
            text("SELECT rolsuper OR rolcreaterole FROM pg_roles WHERE rolname = current_user")
        )
        if not can_create:
            log.warning("role %s does not exist and cannot be created here; no grants", role)
            return
        connection.execute(text(f'CREATE ROLE "{role}" NOLOGIN'))
    connection.execute(
        text(f'GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO "{role}"')
    )
    connection.execute(text(f'REVOKE INSERT, UPDATE, DELETE ON alembic_version FROM "{role}"'))
    # The operators' counts across tenants (webhook_stats(), migration 0008).
    connection.execute(text(f'GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA public TO "{role}"'))


async def _run() -> None:
    engine = create_async_engine(
        async_url(config.get_main_option("sqlalchemy.url") or ""), poolclass=NullPool
    )
    async with engine.connect() as connection:
        await connection.run_sync(_migrate)
    await engine.dispose()


if context.is_offline_mode():
    raise SystemExit("offline migrations are not supported; run `tenvoice migrate`")
asyncio.run(_run())
