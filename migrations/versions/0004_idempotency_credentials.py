"""Idempotency keys belong to the credential that used them; no stored secret.

The `scope` column now names a credential ("admin", or "key:" and an API key's id) where it
named a tenant, so its shape stays. Rows a tenant owned cannot say which of the tenant's
credentials made them, so no caller may be handed them again: they go. Answers that hold a
new API key's secret (`tv_sk_`) lose their body and are kept as withheld, so that a retry
is refused rather than run again.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_KEY_SHOWN_ONCE = (
    "The API key was created, but its secret is shown only once and is gone; "
    "list the tenant's API keys instead (and revoke a key whose secret is lost)."
)


# A byte search: LIKE would read the "_" of the prefix as a wildcard.
_HOLDS_AN_API_KEY_SECRET = {
    "postgresql": "position(CAST('tv_sk_' AS bytea) IN response_body) > 0",
    "sqlite": "instr(response_body, CAST('tv_sk_' AS BLOB)) > 0",
}
_KEYS = sa.table(
    "idempotency_keys",
    sa.column("status", sa.String()),
    sa.column("response_headers", sa.JSON()),
    sa.column("response_body", sa.LargeBinary()),
)


def upgrade() -> None:
    bind = op.get_bind()
    op.execute("DELETE FROM idempotency_keys WHERE scope <> 'admin' AND scope NOT LIKE 'key:%'")
    bind.execute(
        sa.update(_KEYS)
        .where(sa.text(_HOLDS_AN_API_KEY_SECRET[bind.dialect.name]))
        .values(
            status="withheld",
            response_headers=sa.null(),
            response_body=_KEY_SHOWN_ONCE.encode(),
        )
    )


def downgrade() -> None:
    # The earlier code reads neither a credential's rows nor a withheld answer.
    op.execute("DELETE FROM idempotency_keys WHERE scope LIKE 'key:%' OR status = 'withheld'")
