"""Public invoice links: a token per finalized invoice, found by its hash.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("invoices", sa.Column("hosted_token", sa.String(64), nullable=True))
    op.create_table(
        "hosted_invoice_links",
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("invoice_id", sa.Uuid(), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "invoice_id", name="pk_hosted_invoice_links"),
        sa.ForeignKeyConstraint(
            ["tenant_id", "invoice_id"],
            ["invoices.tenant_id", "invoices.id"],
            name="fk_hosted_invoice_links_tenant_id_invoices",
            ondelete="CASCADE",
        ),
    )
    op.create_index(
        "ix_hosted_invoice_links_token_hash", "hosted_invoice_links", ["token_hash"], unique=True
    )


def downgrade() -> None:
    op.drop_table("hosted_invoice_links")
    op.drop_column("invoices", "hosted_token")
