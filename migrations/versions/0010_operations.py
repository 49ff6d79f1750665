"""Operations: a tenant's own rate limit, and the trace context that rides with queued work.

`tenants.rate_limit` is the budget the admin sets for one tenant (`"N/second"`); null means
the deployment's default. `trace_context` keeps the W3C trace context (`traceparent`,
`tracestate`) of the transaction that queued an outbox job or a webhook delivery, so the
worker continues that trace; null when tracing is off, as it is by default.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TRACED = ("outbox_jobs", "webhook_deliveries")


def _json() -> sa.types.TypeEngine[object]:
    return sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.add_column("tenants", sa.Column("rate_limit", sa.String(32), nullable=True))
    for name in _TRACED:
        op.add_column(name, sa.Column("trace_context", _json(), nullable=True))


def downgrade() -> None:
    for name in _TRACED:
        op.drop_column(name, "trace_context")
    op.drop_column("tenants", "rate_limit")
