"""Running migrations, and the row-level security every tenant-owned table gets."""

from functools import lru_cache
from pathlib import Path

from alembic import command, op
from alembic.config import Config
from alembic.script import ScriptDirectory

import tenvoice

MIGRATIONS = Path(tenvoice.__file__).resolve().parents[2] / "migrations"

# The policy reads the per-transaction setting the session writes on BEGIN (tenancy.py); an
# unset or empty setting matches no row, so a connection that forgot its tenant sees nothing.
_TENANT_MATCH = "tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid"


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url)
    return config


@lru_cache
def revisions() -> tuple[str, frozenset[str]]:
    """This build's head revision and every revision it knows."""
    scripts = ScriptDirectory.from_config(alembic_config(""))
    head = scripts.get_current_head()
    assert head is not None
    return head, frozenset(script.revision for script in scripts.walk_revisions())


def schema_is_behind(version: str | None) -> bool:
    """Whether a database at `version` lacks migrations this build needs.

    A version this build does not know was written by a newer build: migrations only expand
    the schema before code relies on it, so that database is not behind.
    """
    head, known = revisions()
    return version is None or (version in known and version != head)


def upgrade(
    url: str, app_role: str, revision: str = "head", *, secrets_key: str | None = None
) -> None:
    """Migrate to `revision`. The secrets key is needed only to derive the public links of
    invoices finalized before links were derived (migration 0005)."""
    config = alembic_config(url)
    config.attributes["app_role"] = app_role
    config.attributes["secrets_key"] = secrets_key
    command.upgrade(config, revision)


def enable_tenant_rls(table: str) -> None:
    """Row-level security on a tenant-owned table (PostgreSQL only; SQLite has none).

    FORCE makes the policy bind the table's owner too, so even a service that connects as
    the owner cannot read across tenants; only superusers and BYPASSRLS roles skip it.
    """
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
    op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
    op.execute(
        f"CREATE POLICY tenant_isolation ON {table} "
        f"USING ({_TENANT_MATCH}) WITH CHECK ({_TENANT_MATCH})"
    )
