"""webhook_stats(): deliveries and endpoints by status across tenants, for operators.

`tenvoice jobs` and /metrics connect with no tenant, and row-level security (forced on the
owner too) shows such a connection no tenant's rows. The function visits each tenant in turn
and returns counts only, never a row; the service role may execute it (migrations/env.py).
SQLite has no row-level security and counts with a plain query.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_FUNCTION = """
CREATE FUNCTION webhook_stats() RETURNS TABLE (kind text, state text, total bigint)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
DECLARE
    caller text := current_setting('app.tenant_id', true);
    tenant uuid;
BEGIN
    FOR tenant IN SELECT t.id FROM tenants t LOOP
        PERFORM set_config('app.tenant_id', tenant::text, true);
        RETURN QUERY
            SELECT 'delivery'::text, d.status::text, count(*)
            FROM webhook_deliveries d WHERE d.tenant_id = tenant GROUP BY d.status;
        RETURN QUERY
            SELECT 'endpoint'::text, e.status::text, count(*)
            FROM webhook_endpoints e WHERE e.tenant_id = tenant GROUP BY e.status;
    END LOOP;
    -- The caller's transaction keeps the tenant it had.
    PERFORM set_config('app.tenant_id', coalesce(caller, ''), true);
END
$$
"""


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(_FUNCTION)
    # Functions are executable by everyone unless said otherwise; only the service role
    # (granted in env.py) and the owner may run this one.
    op.execute("REVOKE ALL ON FUNCTION webhook_stats() FROM PUBLIC")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP FUNCTION IF EXISTS webhook_stats()")
