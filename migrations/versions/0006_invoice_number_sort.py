"""Invoice numbers sort by their sequence, not as strings.

`number_sort` is year * 10**12 + sequence (invoices/models.py: number_sort_key), set at
finalize; finalized invoices get it from their number here.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03
"""

import re
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_SEQUENCES_PER_YEAR = 10**12
# `{prefix}-{YYYY}-{N}`: the prefix may itself hold dashes, so both parts are read from the end.
_POSTGRES_BACKFILL = r"""
UPDATE invoices
SET number_sort = substring(number from '(\d+)-\d+$')::bigint * 1000000000000
                  + substring(number from '(\d+)$')::bigint
WHERE number ~ '\d+-\d+$'
"""

_YEAR_AND_SEQUENCE = re.compile(r"(\d+)-(\d+)$")


def upgrade() -> None:
    op.add_column("invoices", sa.Column("number_sort", sa.BigInteger(), nullable=True))
    op.create_index(
        "ix_invoices_tenant_number_sort", "invoices", ["tenant_id", "number_sort", "id"]
    )
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        # Row-level security binds the owner too (FORCE): lifted for this one statement, in
        # this transaction, so every tenant's invoices are filled.
        op.execute("ALTER TABLE invoices NO FORCE ROW LEVEL SECURITY")
        op.execute(_POSTGRES_BACKFILL)
        op.execute("ALTER TABLE invoices FORCE ROW LEVEL SECURITY")
    else:
        _backfill_in_python(bind)


def _backfill_in_python(bind: sa.Connection) -> None:
    """SQLite has no regular expressions: the numbers are read and parsed here."""
    invoices = sa.table(
        "invoices",
        sa.column("tenant_id", sa.Uuid()),
        sa.column("id", sa.Uuid()),
        sa.column("number", sa.String()),
        sa.column("number_sort", sa.BigInteger()),
    )
    rows = bind.execute(
        sa.select(invoices.c.tenant_id, invoices.c.id, invoices.c.number).where(
            invoices.c.number.is_not(None)
        )
    ).all()
    keys = []
    for tenant_id, invoice_id, number in rows:
        match = _YEAR_AND_SEQUENCE.search(number)
        if match is not None:
            key = int(match[1]) * _SEQUENCES_PER_YEAR + int(match[2])
            keys.append({"t": tenant_id, "i": invoice_id, "key": key})
    if keys:
        bind.execute(
            invoices.update()
            .where(invoices.c.tenant_id == sa.bindparam("t"), invoices.c.id == sa.bindparam("i"))
            .values(number_sort=sa.bindparam("key")),
            keys,
        )


def downgrade() -> None:
    op.drop_index("ix_invoices_tenant_number_sort", table_name="invoices")
    op.drop_column("invoices", "number_sort")
