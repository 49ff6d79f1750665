"""Tenants, API keys, customers, invoices, numbering and the timeline.

Revision ID: 0001
Revises:
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from tenvoice.platform.migrate import enable_tenant_rls

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TENANT_OWNED = (
    "customers",
    "invoices",
    "invoice_items",
    "invoice_number_counters",
    "timeline_events",
)


def _json() -> sa.types.TypeEngine[object]:
    return sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def _ts(name: str, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "tenants",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("default_currency", sa.String(3), nullable=False),
        sa.Column("invoice_prefix", sa.String(20), nullable=False),
        sa.Column("default_tax_rate", sa.BigInteger(), nullable=False),
        _ts("created_at"),
        _ts("updated_at"),
        sa.PrimaryKeyConstraint("id", name="pk_tenants"),
    )
    op.create_table(
        "api_keys",
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("prefix", sa.String(16), nullable=False),
        sa.Column("key_hash", sa.String(64), nullable=False),
        _ts("created_at"),
        _ts("revoked_at", nullable=True),
        sa.PrimaryKeyConstraint("tenant_id", "id", name="pk_api_keys"),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name="fk_api_keys_tenant_id_tenants"
        ),
    )
    op.create_index("ix_api_keys_key_hash", "api_keys", ["key_hash"], unique=True)

    op.create_table(
        "customers",
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("email", sa.String(320), nullable=False),
        sa.Column("phone", sa.String(40), nullable=True),
        sa.Column("address", _json(), nullable=True),
        sa.Column("metadata", _json(), nullable=False),
        _ts("created_at"),
        _ts("updated_at"),
        _ts("deleted_at", nullable=True),
        sa.PrimaryKeyConstraint("tenant_id", "id", name="pk_customers"),
    )
    op.create_index("ix_customers_tenant_created", "customers", ["tenant_id", "created_at", "id"])

    op.create_table(
        "invoices",
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("number", sa.String(40), nullable=True),
        sa.Column("customer_id", sa.Uuid(), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("issue_date", sa.Date(), nullable=False),
        sa.Column("due_date", sa.Date(), nullable=False),
        sa.Column("subtotal", sa.BigInteger(), nullable=False),
        sa.Column("tax", sa.BigInteger(), nullable=False),
        sa.Column("total", sa.BigInteger(), nullable=False),
        sa.Column("amount_paid", sa.BigInteger(), nullable=False),
        sa.Column("memo", sa.Text(), nullable=True),
        sa.Column("metadata", _json(), nullable=False),
        _ts("created_at"),
        _ts("updated_at"),
        _ts("finalized_at", nullable=True),
        _ts("sent_at", nullable=True),
        _ts("paid_at", nullable=True),
        _ts("voided_at", nullable=True),
        _ts("marked_uncollectible_at", nullable=True),
        sa.PrimaryKeyConstraint("tenant_id", "id", name="pk_invoices"),
        sa.ForeignKeyConstraint(
            ["tenant_id", "customer_id"],
            ["customers.tenant_id", "customers.id"],
            name="fk_invoices_tenant_id_customers",
        ),
    )
    op.create_index("uq_invoices_tenant_number", "invoices", ["tenant_id", "number"], unique=True)
    op.create_index("ix_invoices_tenant_created", "invoices", ["tenant_id", "created_at", "id"])
    op.create_index(
        "ix_invoices_tenant_status_created", "invoices", ["tenant_id", "status", "created_at", "id"]
    )
    op.create_index(
        "ix_invoices_tenant_customer_created",
        "invoices",
        ["tenant_id", "customer_id", "created_at", "id"],
    )
    op.create_index("ix_invoices_tenant_due", "invoices", ["tenant_id", "due_date", "id"])
    op.create_index("ix_invoices_tenant_total", "invoices", ["tenant_id", "total", "id"])

    op.create_table(
        "invoice_items",
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("invoice_id", sa.Uuid(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("description", sa.String(500), nullable=False),
        sa.Column("quantity", sa.BigInteger(), nullable=False),
        sa.Column("unit_price", sa.BigInteger(), nullable=False),
        sa.Column("tax_rate", sa.BigInteger(), nullable=False),
        sa.Column("subtotal", sa.BigInteger(), nullable=False),
        sa.Column("tax", sa.BigInteger(), nullable=False),
        sa.Column("total", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "id", name="pk_invoice_items"),
        sa.ForeignKeyConstraint(
            ["tenant_id", "invoice_id"],
            ["invoices.tenant_id", "invoices.id"],
            name="fk_invoice_items_tenant_id_invoices",
            ondelete="CASCADE",
        ),
    )
    op.create_index(
        "ix_invoice_items_tenant_invoice", "invoice_items", ["tenant_id", "invoice_id", "position"]
    )

    op.create_table(
        "invoice_number_counters",
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("last_value", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "year", name="pk_invoice_number_counters"),
    )

    op.create_table(
        "timeline_events",
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("event_type", sa.String(64), nullable=False),
        sa.Column("entity_type", sa.String(32), nullable=False),
        sa.Column("entity_id", sa.Uuid(), nullable=False),
        sa.Column("stream_id", sa.Uuid(), nullable=False),
        _ts("occurred_at"),
        sa.Column("request_id", sa.String(128), nullable=True),
        sa.Column("actor_type", sa.String(16), nullable=False),
        sa.Column("actor_id", sa.String(64), nullable=True),
        sa.Column("data", _json(), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "id", name="pk_timeline_events"),
    )
    op.create_index(
        "ix_timeline_events_tenant_stream",
        "timeline_events",
        ["tenant_id", "stream_id", "occurred_at", "id"],
    )

    for table in TENANT_OWNED:
        enable_tenant_rls(table)


def downgrade() -> None:
    for table in reversed(("tenants", "api_keys", *TENANT_OWNED)):
        op.drop_table(table)
