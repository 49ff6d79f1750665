"""Public invoice links: no token kept in plain text.

Links are derived from the invoice's ids and the server's secrets key (invoices/links.py),
so `invoices.hosted_token` goes. Links already sent keep working: their hashes stay, and
every finalized invoice also gets the hash of its derived link, so an invoice may now have
more than one link. That derivation needs the secrets key (`tenvoice migrate` passes it);
a database with no finalized invoice needs none.

PostgreSQL only hides a dropped column: the old tokens stay in the table's pages until its
rows are rewritten (VACUUM FULL invoices, or a dump and restore).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03
"""

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from alembic import context, op

from tenvoice.config import SettingsError, require_secrets_key
from tenvoice.invoices.links import LinkTokens
from tenvoice.platform.tokens import token_hash

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_BATCH = 2000

_invoices = sa.table(
    "invoices",
    sa.column("tenant_id", sa.Uuid()),
    sa.column("id", sa.Uuid()),
    sa.column("finalized_at", sa.DateTime(timezone=True)),
)
_links = sa.table(
    "hosted_invoice_links",
    sa.column("tenant_id", sa.Uuid()),
    sa.column("invoice_id", sa.Uuid()),
    sa.column("token_hash", sa.String(64)),
    sa.column("created_at", sa.DateTime(timezone=True)),
)


def upgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    if postgres:
        # The owner reads every tenant's invoices here; FORCE is back before this commits.
        op.execute("ALTER TABLE invoices NO FORCE ROW LEVEL SECURITY")
    # Checked before any change: SQLite's DDL here would not roll back.
    tokens = _link_tokens() if _any_finalized() else None
    with op.batch_alter_table("hosted_invoice_links") as batch:
        batch.drop_constraint("pk_hosted_invoice_links", type_="primary")
        batch.create_primary_key(
            "pk_hosted_invoice_links", ["tenant_id", "invoice_id", "token_hash"]
        )
    if tokens is not None:
        _link_finalized_invoices(tokens)
    if postgres:
        op.execute("ALTER TABLE invoices FORCE ROW LEVEL SECURITY")
    op.drop_column("invoices", "hosted_token")


def _any_finalized() -> bool:
    found = sa.select(_invoices.c.id).where(_invoices.c.finalized_at.is_not(None)).limit(1)
    return op.get_bind().execute(found).first() is not None


def _link_finalized_invoices(tokens: LinkTokens) -> None:
    """The hash of each finalized invoice's derived link, in batches in key order."""
    bind = op.get_bind()
    finalized = (
        sa.select(_invoices.c.tenant_id, _invoices.c.id)
        .where(_invoices.c.finalized_at.is_not(None))
        .order_by(_invoices.c.tenant_id, _invoices.c.id)
        .limit(_BATCH)
    )
    following = finalized.where(
        sa.tuple_(_invoices.c.tenant_id, _invoices.c.id)
        > sa.tuple_(sa.bindparam("tenant_id", type_=sa.Uuid()), sa.bindparam("id", type_=sa.Uuid()))
    )
    now = datetime.now(UTC)
    after: dict[str, Any] | None = None
    while True:
        rows = bind.execute(finalized if after is None else following, after).all()
        if not rows:
            return
        bind.execute(
            _links.insert(),
            [
                {
                    "tenant_id": row.tenant_id,
                    "invoice_id": row.id,
                    "token_hash": token_hash(tokens.token(row.tenant_id, row.id)),
                    "created_at": now,
                }
                for row in rows
            ],
        )
        after = {"tenant_id": rows[-1].tenant_id, "id": rows[-1].id}


def _link_tokens() -> LinkTokens:
    key: str | None = context.config.attributes.get("secrets_key")
    if not key:
        raise SettingsError(
            "Migration 0005 needs TENVOICE_SECRETS_KEY (the one the service will run with) "
            "to derive the public links of the invoices already finalized; set it and run "
            "`tenvoice migrate` again."
        )
    return LinkTokens(require_secrets_key(key))


def downgrade() -> None:
    # The derived tokens cannot be written back; keep each invoice's first link (the one
    # minted before this revision, where there was one) and give up the others.
    op.execute(
        "DELETE FROM hosted_invoice_links WHERE EXISTS ("
        " SELECT 1 FROM hosted_invoice_links AS first"
        " WHERE first.tenant_id = hosted_invoice_links.tenant_id"
        " AND first.invoice_id = hosted_invoice_links.invoice_id"
        " AND (first.created_at < hosted_invoice_links.created_at"
        " OR (first.created_at = hosted_invoice_links.created_at"
        " AND first.token_hash < hosted_invoice_links.token_hash)))"
    )
    with op.batch_alter_table("hosted_invoice_links") as batch:
        batch.drop_constraint("pk_hosted_invoice_links", type_="primary")
        batch.create_primary_key("pk_hosted_invoice_links", ["tenant_id", "invoice_id"])
    op.add_column("invoices", sa.Column("hosted_token", sa.String(64), nullable=True))
