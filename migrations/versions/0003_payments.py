"""Payments, the outbox, the webhook inbox and idempotency keys.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from tenvoice.platform.migrate import enable_tenant_rls

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _json() -> sa.types.TypeEngine[object]:
    return sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def _ts(name: str, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    # Existing invoices have nothing pending; the server default fills them in.
    op.add_column(
        "invoices",
        sa.Column("amount_pending", sa.BigInteger(), nullable=False, server_default="0"),
    )

    op.add_column("invoices", sa.Column("overdue_at", sa.DateTime(timezone=True), nullable=True))

    op.create_table(
        "payments",
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("invoice_id", sa.Uuid(), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("method", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("failure_code", sa.String(64), nullable=True),
        sa.Column("failure_message", sa.String(500), nullable=True),
        sa.Column("gateway_reference", sa.String(128), nullable=True),
        _ts("attempted_at"),
        _ts("succeeded_at", nullable=True),
        _ts("failed_at", nullable=True),
        sa.PrimaryKeyConstraint("tenant_id", "id", name="pk_payments"),
        sa.ForeignKeyConstraint(
            ["tenant_id", "invoice_id"],
            ["invoices.tenant_id", "invoices.id"],
            name="fk_payments_tenant_id_invoices",
        ),
    )
    op.create_index("ix_payments_tenant_attempted", "payments", ["tenant_id", "attempted_at", "id"])
    op.create_index(
        "ix_payments_tenant_invoice_attempted",
        "payments",
        ["tenant_id", "invoice_id", "attempted_at", "id"],
    )
    op.create_index(
        "ix_payments_tenant_status_attempted",
        "payments",
        ["tenant_id", "status", "attempted_at", "id"],
    )
    enable_tenant_rls("payments")

    op.create_table(
        "payment_routes",
        sa.Column("payment_id", sa.Uuid(), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.PrimaryKeyConstraint("payment_id", name="pk_payment_routes"),
        sa.ForeignKeyConstraint(
            ["tenant_id", "payment_id"],
            ["payments.tenant_id", "payments.id"],
            name="fk_payment_routes_tenant_id_payments",
            ondelete="CASCADE",
        ),
    )

    op.create_table(
        "outbox_jobs",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=True),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("payload", _json(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        _ts("run_after"),
        sa.Column("last_error", sa.Text(), nullable=True),
        _ts("created_at"),
        _ts("updated_at"),
        _ts("finished_at", nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_outbox_jobs"),
    )
    pending = sa.text("status = 'pending'")
    op.create_index(
        "ix_outbox_jobs_due",
        "outbox_jobs",
        ["run_after"],
        postgresql_where=pending,
        sqlite_where=pending,
    )
    op.create_index("ix_outbox_jobs_status_finished", "outbox_jobs", ["status", "finished_at"])

    op.create_table(
        "inbox_messages",
        sa.Column("source", sa.String(32), nullable=False),
        sa.Column("message_id", sa.String(255), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=True),
        sa.Column("message_type", sa.String(64), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("detail", sa.Text(), nullable=True),
        _ts("received_at"),
        sa.PrimaryKeyConstraint("source", "message_id", name="pk_inbox_messages"),
    )

    op.create_table(
        "idempotency_keys",
        sa.Column("scope", sa.String(64), nullable=False),
        sa.Column("key", sa.String(255), nullable=False),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("response_status", sa.Integer(), nullable=True),
        sa.Column("response_headers", _json(), nullable=True),
        sa.Column("response_body", sa.LargeBinary(), nullable=True),
        _ts("created_at"),
        _ts("locked_until"),
        sa.PrimaryKeyConstraint("scope", "key", name="pk_idempotency_keys"),
    )
    op.create_index("ix_idempotency_keys_created", "idempotency_keys", ["created_at"])


def downgrade() -> None:
    for table in (
        "idempotency_keys",
        "inbox_messages",
        "outbox_jobs",
        "payment_routes",
        "payments",
    ):
        op.drop_table(table)
    with op.batch_alter_table("invoices") as batch:
        batch.drop_column("overdue_at")
        batch.drop_column("amount_pending")
