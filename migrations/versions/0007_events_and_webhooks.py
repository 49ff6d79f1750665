"""The event log (the timeline's table, renamed and indexed for the Events API) and
outbound webhooks: endpoints, their subscriptions, deliveries and attempts.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from tenvoice.platform.migrate import enable_tenant_rls

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_NEW_TENANT_TABLES = (
    "webhook_endpoints",
    "webhook_subscriptions",
    "webhook_deliveries",
    "webhook_attempts",
)
_EVENT_INDEXES = {
    "ix_events_tenant_occurred": ["tenant_id", "occurred_at", "id"],
    "ix_events_tenant_type": ["tenant_id", "event_type", "occurred_at", "id"],
    "ix_events_tenant_entity": ["tenant_id", "entity_id", "occurred_at", "id"],
}


def _json() -> sa.types.TypeEngine[object]:
    return sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def _ts(name: str, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _pending(extra: str = "") -> sa.TextClause:
    return sa.text("status = 'pending'" + extra)


def upgrade() -> None:
    _events()
    op.add_column("outbox_jobs", sa.Column("dedupe_key", sa.String(128), nullable=True))
    unclaimed = _pending(" AND attempts = 0")
    op.create_index(
        "ix_outbox_jobs_unclaimed_dedupe",
        "outbox_jobs",
        ["dedupe_key"],
        postgresql_where=unclaimed,
        sqlite_where=unclaimed,
    )
    _endpoints()
    _deliveries()
    for table in _NEW_TENANT_TABLES:
        enable_tenant_rls(table)


def _events() -> None:
    # The timeline was always the event log; it is now read across entities too. Row-level
    # security and its policy follow the table through the rename.
    op.rename_table("timeline_events", "events")
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE events RENAME CONSTRAINT pk_timeline_events TO pk_events")
        op.execute("ALTER INDEX ix_timeline_events_tenant_stream RENAME TO ix_events_tenant_stream")
    else:
        op.drop_index("ix_timeline_events_tenant_stream", table_name="events")
        op.create_index(
            "ix_events_tenant_stream", "events", ["tenant_id", "stream_id", "occurred_at", "id"]
        )
    for name, columns in _EVENT_INDEXES.items():
        op.create_index(name, "events", columns)


def _endpoints() -> None:
    op.create_table(
        "webhook_endpoints",
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("url", sa.String(2048), nullable=False),
        sa.Column("description", sa.String(500), nullable=True),
        sa.Column("enabled_events", _json(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("disabled_reason", sa.String(200), nullable=True),
        sa.Column("metadata", _json(), nullable=False),
        sa.Column("secret", sa.String(256), nullable=False),
        sa.Column("previous_secret", sa.String(256), nullable=True),
        _ts("previous_secret_expires_at", nullable=True),
        _ts("created_at"),
        _ts("updated_at"),
        sa.Column("dispatch_owner", sa.Uuid(), nullable=True),
        _ts("dispatch_lease_until", nullable=True),
        _ts("wakeup_at", nullable=True),
        _ts("failing_since", nullable=True),
        sa.Column("failed_attempts", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "id", name="pk_webhook_endpoints"),
    )
    op.create_index(
        "ix_webhook_endpoints_tenant_created",
        "webhook_endpoints",
        ["tenant_id", "created_at", "id"],
    )
    op.create_table(
        "webhook_subscriptions",
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("endpoint_id", sa.Uuid(), nullable=False),
        sa.Column("pattern", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint(
            "tenant_id", "endpoint_id", "pattern", name="pk_webhook_subscriptions"
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "endpoint_id"],
            ["webhook_endpoints.tenant_id", "webhook_endpoints.id"],
            name="fk_webhook_subscriptions_tenant_id_webhook_endpoints",
            ondelete="CASCADE",
        ),
    )
    op.create_index(
        "ix_webhook_subscriptions_tenant_pattern",
        "webhook_subscriptions",
        ["tenant_id", "pattern", "endpoint_id"],
    )


def _deliveries() -> None:
    op.create_table(
        "webhook_deliveries",
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("endpoint_id", sa.Uuid(), nullable=False),
        sa.Column("event_id", sa.Uuid(), nullable=False),
        sa.Column("event_type", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        _ts("next_attempt_at", nullable=True),
        _ts("last_attempt_at", nullable=True),
        sa.Column("last_response_status", sa.Integer(), nullable=True),
        _ts("created_at"),
        _ts("updated_at"),
        sa.PrimaryKeyConstraint("tenant_id", "id", name="pk_webhook_deliveries"),
        sa.ForeignKeyConstraint(
            ["tenant_id", "endpoint_id"],
            ["webhook_endpoints.tenant_id", "webhook_endpoints.id"],
            name="fk_webhook_deliveries_tenant_id_webhook_endpoints",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "event_id"],
            ["events.tenant_id", "events.id"],
            name="fk_webhook_deliveries_tenant_id_events",
        ),
        sa.UniqueConstraint(
            "tenant_id",
            "endpoint_id",
            "event_id",
            name="uq_webhook_deliveries_tenant_id_endpoint_id_event_id",
        ),
    )
    op.create_index(
        "ix_webhook_deliveries_due",
        "webhook_deliveries",
        ["tenant_id", "endpoint_id", "event_id"],
        postgresql_where=_pending(),
        sqlite_where=_pending(),
    )
    op.create_index(
        "ix_webhook_deliveries_tenant_listed",
        "webhook_deliveries",
        ["tenant_id", "endpoint_id", "created_at", "id"],
    )
    op.create_table(
        "webhook_attempts",
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("delivery_id", sa.Uuid(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        _ts("at"),
        sa.Column("response_status", sa.Integer(), nullable=True),
        sa.Column("duration_ms", sa.Integer(), nullable=False),
        sa.Column("error", sa.String(500), nullable=True),
        sa.Column("response_body", sa.String(1024), nullable=True),
        sa.PrimaryKeyConstraint("tenant_id", "delivery_id", "number", name="pk_webhook_attempts"),
        sa.ForeignKeyConstraint(
            ["tenant_id", "delivery_id"],
            ["webhook_deliveries.tenant_id", "webhook_deliveries.id"],
            name="fk_webhook_attempts_tenant_id_webhook_deliveries",
            ondelete="CASCADE",
        ),
    )


def downgrade() -> None:
    for table in reversed(_NEW_TENANT_TABLES):
        op.drop_table(table)
    op.drop_index("ix_outbox_jobs_unclaimed_dedupe", table_name="outbox_jobs")
    op.drop_column("outbox_jobs", "dedupe_key")
    for name in _EVENT_INDEXES:
        op.drop_index(name, table_name="events")
    op.rename_table("events", "timeline_events")
