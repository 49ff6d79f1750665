"""The databases the benchmark seeds: its two roles, and a freshly created, migrated database.

The owner role owns the schema and seeds it; the app role is the one the API connects as,
so that row-level security binds the benchmark as it binds a deployment.
"""

import asyncio
import os
import sys
from urllib.parse import urlsplit

import asyncpg

DEFAULT_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def role_url(admin_url: str, role: str, database: str) -> str:
    parts = urlsplit(admin_url)
    host = parts.hostname or "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    return f"postgresql://{role}@{host}:{parts.port or 5432}/{database}"


async def prepare_database(
    admin_url: str, database: str, *, owner_role: str, app_role: str
) -> tuple[str, str]:
    """A freshly created and migrated `database`; returns (owner URL, app URL).

    Roles are created when missing (the owner a plain login role, the app role one that
    row-level security binds). An existing database of that name is dropped first.
    """
    admin = await asyncpg.connect(admin_url)
    try:
        for role, attributes in (
            (owner_role, "LOGIN NOSUPERUSER"),
            (app_role, "LOGIN NOSUPERUSER NOBYPASSRLS"),
        ):
            found = await admin.fetchrow(
                "SELECT rolcanlogin, rolsuper, rolbypassrls FROM pg_roles WHERE rolname = $1",
                role,
            )
            if found is None:
                await admin.execute(f"CREATE ROLE {quote_ident(role)} {attributes}")
                continue
            if role == app_role and (found["rolsuper"] or found["rolbypassrls"]):
                raise RuntimeError(
                    f"role {app_role} bypasses row-level security; the benchmark needs one "
                    "that RLS binds"
                )
            if not found["rolcanlogin"]:
                await admin.execute(f"ALTER ROLE {quote_ident(role)} LOGIN")
        await admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = $1 AND pid <> pg_backend_pid()",
            database,
        )
        await admin.execute(f"DROP DATABASE IF EXISTS {quote_ident(database)} WITH (FORCE)")
        await admin.execute(
            f"CREATE DATABASE {quote_ident(database)} OWNER {quote_ident(owner_role)}"
        )
    finally:
        await admin.close()
    owner_url = role_url(admin_url, owner_role, database)
    app_url = role_url(admin_url, app_role, database)
    await _migrate(owner_url, app_role)
    return owner_url, app_url


async def _migrate(owner_url: str, app_role: str) -> None:
    """`tenvoice migrate` as the owner; it grants the app role its table privileges."""
    env = {
        **os.environ,
        "TENVOICE_DATABASE_URL": owner_url,
        "TENVOICE_MIGRATION_DATABASE_URL": owner_url,
        "TENVOICE_DATABASE_APP_ROLE": app_role,
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tenvoice.cli",
        "migrate",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await process.communicate()
    if process.returncode != 0:
        raise RuntimeError(f"tenvoice migrate failed:\n{output.decode(errors='replace')}")
