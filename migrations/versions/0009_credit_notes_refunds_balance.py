"""Credit notes, refunds and customer balances, and the invoice and payment columns they move.

Existing invoices, their items and payments get zeroes (and `false`), not nulls: nothing was
credited, refunded or applied before these existed. Every new tenant table gets row-level
security.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-05
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from tenvoice.platform.migrate import enable_tenant_rls

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_NEW_TENANT_TABLES = (
    "credit_notes",
    "credit_note_lines",
    "refunds",
    "customer_balances",
    "balance_transactions",
)


def _json() -> sa.types.TypeEngine[object]:
    return sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def _ts(name: str, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _money(name: str) -> sa.Column[object]:
    return sa.Column(name, sa.BigInteger(), nullable=False, server_default="0")


def _scaled(name: str, nullable: bool = False) -> sa.Column[object]:
    # As ScaledDecimal stores it: the decimal times 10**scale, as an integer.
    return sa.Column(name, sa.BigInteger(), nullable=nullable)


def _tenant_fk(
    table: str, column: str, target: str, ondelete: str | None = None
) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["tenant_id", column],
        [f"{target}.tenant_id", f"{target}.id"],
        name=f"fk_{table}_tenant_id_{column}_{target}",
        ondelete=ondelete,
    )


def upgrade() -> None:
    for column in ("credited_amount", "amount_refunded", "applied_balance"):
        op.add_column("invoices", _money(column))
    op.add_column(
        "invoices",
        sa.Column("paid_out_of_band", sa.Boolean(), nullable=False, server_default=sa.false()),
    )
    op.add_column(
        "invoices",
        sa.Column("credit_notes_issued", sa.Integer(), nullable=False, server_default="0"),
    )
    op.add_column("invoices", _money("credit_notes_total"))
    for column in ("credited_quantity", "credited_subtotal"):
        op.add_column("invoice_items", _money(column))
    op.add_column("payments", _money("amount_refunded"))
    _credit_notes()
    _refunds()
    _balances()
    for table in _NEW_TENANT_TABLES:
        enable_tenant_rls(table)


def _credit_notes() -> None:
    op.create_table(
        "credit_notes",
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("number", sa.String(48), nullable=False),
        sa.Column("invoice_id", sa.Uuid(), nullable=False),
        sa.Column("customer_id", sa.Uuid(), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("reason", sa.String(32), nullable=True),
        sa.Column("memo", sa.Text(), nullable=True),
        sa.Column("metadata", _json(), nullable=False),
        *(
            sa.Column(name, sa.BigInteger(), nullable=False)
            for name in (
                "subtotal",
                "tax",
                "total",
                "pre_payment_amount",
                "refund_amount",
                "credit_amount",
                "out_of_band_amount",
            )
        ),
        _ts("created_at"),
        _ts("voided_at", nullable=True),
        sa.PrimaryKeyConstraint("tenant_id", "id", name="pk_credit_notes"),
        _tenant_fk("credit_notes", "invoice_id", "invoices"),
        _tenant_fk("credit_notes", "customer_id", "customers"),
    )
    op.create_index(
        "uq_credit_notes_tenant_invoice_number",
        "credit_notes",
        ["tenant_id", "invoice_id", "number"],
        unique=True,
    )
    op.create_index(
        "ix_credit_notes_tenant_created", "credit_notes", ["tenant_id", "created_at", "id"]
    )
    op.create_index(
        "ix_credit_notes_tenant_customer_created",
        "credit_notes",
        ["tenant_id", "customer_id", "created_at", "id"],
    )
    op.create_table(
        "credit_note_lines",
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("credit_note_id", sa.Uuid(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("invoice_item_id", sa.Uuid(), nullable=True),
        sa.Column("description", sa.String(500), nullable=False),
        _scaled("quantity", nullable=True),
        _scaled("unit_amount"),
        _scaled("tax_rate"),
        sa.Column("subtotal", sa.BigInteger(), nullable=False),
        sa.Column("tax", sa.BigInteger(), nullable=False),
        sa.Column("total", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "id", name="pk_credit_note_lines"),
        _tenant_fk("credit_note_lines", "credit_note_id", "credit_notes", "CASCADE"),
        _tenant_fk("credit_note_lines", "invoice_item_id", "invoice_items"),
    )
    op.create_index(
        "ix_credit_note_lines_tenant_note",
        "credit_note_lines",
        ["tenant_id", "credit_note_id", "position"],
    )


def _refunds() -> None:
    op.create_table(
        "refunds",
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("payment_id", sa.Uuid(), nullable=False),
        sa.Column("invoice_id", sa.Uuid(), nullable=False),
        sa.Column("credit_note_id", sa.Uuid(), nullable=True),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("reason", sa.String(32), nullable=True),
        sa.Column("failure_code", sa.String(64), nullable=True),
        sa.Column("gateway_reference", sa.String(128), nullable=True),
        _ts("created_at"),
        _ts("succeeded_at", nullable=True),
        _ts("failed_at", nullable=True),
        sa.PrimaryKeyConstraint("tenant_id", "id", name="pk_refunds"),
        _tenant_fk("refunds", "payment_id", "payments"),
        _tenant_fk("refunds", "invoice_id", "invoices"),
        _tenant_fk("refunds", "credit_note_id", "credit_notes"),
    )
    for name, columns in {
        "ix_refunds_tenant_created": ["tenant_id", "created_at", "id"],
        "ix_refunds_tenant_payment_created": ["tenant_id", "payment_id", "created_at", "id"],
        "ix_refunds_tenant_invoice_created": ["tenant_id", "invoice_id", "created_at", "id"],
        "ix_refunds_tenant_credit_note": ["tenant_id", "credit_note_id"],
    }.items():
        op.create_index(name, "refunds", columns)
    # A platform table like payment_routes: the gateway's refund webhook names only the refund.
    op.create_table(
        "refund_routes",
        sa.Column("refund_id", sa.Uuid(), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.PrimaryKeyConstraint("refund_id", name="pk_refund_routes"),
        sa.ForeignKeyConstraint(
            ["tenant_id", "refund_id"],
            ["refunds.tenant_id", "refunds.id"],
            name="fk_refund_routes_tenant_id_refunds",
            ondelete="CASCADE",
        ),
    )


def _balances() -> None:
    op.create_table(
        "customer_balances",
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("customer_id", sa.Uuid(), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint(
            "tenant_id", "customer_id", "currency", name="pk_customer_balances"
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "customer_id"],
            ["customers.tenant_id", "customers.id"],
            name="fk_customer_balances_tenant_id_customers",
        ),
        sa.CheckConstraint("amount >= 0", name="ck_customer_balances_not_negative"),
    )
    op.create_table(
        "balance_transactions",
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("customer_id", sa.Uuid(), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("type", sa.String(32), nullable=False),
        sa.Column("credit_note_id", sa.Uuid(), nullable=True),
        sa.Column("invoice_id", sa.Uuid(), nullable=True),
        sa.Column("description", sa.String(500), nullable=True),
        sa.Column("balance_after", sa.BigInteger(), nullable=False),
        _ts("created_at"),
        sa.PrimaryKeyConstraint("tenant_id", "id", name="pk_balance_transactions"),
        sa.ForeignKeyConstraint(
            ["tenant_id", "customer_id"],
            ["customers.tenant_id", "customers.id"],
            name="fk_balance_transactions_tenant_id_customers",
        ),
    )
    op.create_index(
        "ix_balance_transactions_tenant_customer_created",
        "balance_transactions",
        ["tenant_id", "customer_id", "created_at", "id"],
    )


def downgrade() -> None:
    for table in (
        "balance_transactions",
        "customer_balances",
        "refund_routes",
        "refunds",
        "credit_note_lines",
        "credit_notes",
    ):
        op.drop_table(table)
    with op.batch_alter_table("payments") as batch:
        batch.drop_column("amount_refunded")
    with op.batch_alter_table("invoice_items") as batch:
        for column in ("credited_subtotal", "credited_quantity"):
            batch.drop_column(column)
    with op.batch_alter_table("invoices") as batch:
        for column in (
            "credit_notes_total",
            "credit_notes_issued",
            "paid_out_of_band",
            "applied_balance",
            "amount_refunded",
            "credited_amount",
        ):
            batch.drop_column(column)
