"""Webhook endpoints, their subscriptions, and the delivery log (deliveries, attempts)."""

import uuid
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import ForeignKeyConstraint, Index, Integer, String, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from tenvoice.platform.db import JSON_DOCUMENT, Base, utcnow
from tenvoice.platform.ids import uuid7
from tenvoice.platform.messages import EventRecorder
from tenvoice.platform.tenancy import TenantOwned
from tenvoice.webhooks.errors import EndpointIsDisabled
from tenvoice.webhooks.events import WebhookEndpointDisabled

_PENDING = text("status = 'pending'")

# API.md: at most 16 endpoints per tenant.
MAX_ENDPOINTS_PER_TENANT = 16
# How long the old secret may keep signing after a rotation (API.md: 0..24 hours).
MAX_ROTATION_OVERLAP = timedelta(hours=24)
DISABLED_BY_REQUEST = "disabled by request"
# What PATCH may change besides `status`, under their attribute names.
EDITABLE = ("url", "enabled_events", "description", "metadata_")


class EndpointStatus(StrEnum):
    ENABLED = "enabled"
    DISABLED = "disabled"


class DeliveryStatus(StrEnum):
    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class WebhookEndpoint(TenantOwned, EventRecorder, Base):
    __tablename__ = "webhook_endpoints"
    __table_args__ = (
        Index("ix_webhook_endpoints_tenant_created", "tenant_id", "created_at", "id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid7)
    url: Mapped[str] = mapped_column(String(2048))
    description: Mapped[str | None] = mapped_column(String(500), default=None)
    # As the tenant gave them (types, `invoice.*` prefixes or "*"); the fan-out matches on
    # webhook_subscriptions, one row per entry.
    enabled_events: Mapped[list[str]] = mapped_column(JSON_DOCUMENT)
    status: Mapped[str] = mapped_column(String(16), default=EndpointStatus.ENABLED.value)
    disabled_reason: Mapped[str | None] = mapped_column(String(200), default=None)
    metadata_: Mapped[dict[str, str]] = mapped_column("metadata")
    # Signing secrets, encrypted at rest (webhooks/secrets.py); the previous one signs too
    # until it expires, so a receiver can switch over without missing a delivery.
    secret: Mapped[str] = mapped_column(String(256))
    previous_secret: Mapped[str | None] = mapped_column(String(256), default=None)
    previous_secret_expires_at: Mapped[datetime | None] = mapped_column(default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    # The one dispatcher delivering to this endpoint, and until when its lease holds: first
    # attempts go out one at a time, in event order, whichever worker runs them.
    dispatch_owner: Mapped[uuid.UUID | None] = mapped_column(default=None)
    dispatch_lease_until: Mapped[datetime | None] = mapped_column(default=None)
    # When a dispatch is already queued for the earliest retry (no second one is queued).
    wakeup_at: Mapped[datetime | None] = mapped_column(default=None)
    # Since when every attempt has failed, and how many: five days and ten attempts of
    # nothing but failures disable the endpoint.
    failing_since: Mapped[datetime | None] = mapped_column(default=None)
    failed_attempts: Mapped[int] = mapped_column(Integer, default=0)

    @classmethod
    def register(
        cls,
        *,
        endpoint_id: uuid.UUID,
        url: str,
        enabled_events: list[str],
        description: str | None,
        metadata: dict[str, str],
        sealed_secret: str,
        at: datetime,
    ) -> "WebhookEndpoint":
        """A new, enabled endpoint. Its id is chosen first: the secret is sealed to it."""
        return cls(
            id=endpoint_id,
            url=url,
            enabled_events=list(enabled_events),
            description=description,
            status=EndpointStatus.ENABLED.value,
            metadata_=metadata,
            secret=sealed_secret,
            failed_attempts=0,
            created_at=at,
            updated_at=at,
        )

    def subscriptions(self, patterns: list[str] | None = None) -> list["WebhookSubscription"]:
        """The rows the fan-out matches on: one per entry of enabledEvents (or of `patterns`)."""
        wanted = self.enabled_events if patterns is None else patterns
        return [WebhookSubscription(endpoint_id=self.id, pattern=p) for p in wanted]

    @property
    def enabled(self) -> bool:
        return self.status == EndpointStatus.ENABLED.value

    def change(self, changes: dict[str, Any], at: datetime) -> list[str]:
        """Apply the editable fields that differ; returns the names of those that did."""
        unknown = set(changes) - set(EDITABLE)
        if unknown:
            raise ValueError(f"not editable: {sorted(unknown)}")
        changed = [name for name, value in changes.items() if getattr(self, name) != value]
        for name in changed:
            setattr(self, name, changes[name])
        if changed:
            self.updated_at = at
        return changed

    def enable(self, at: datetime) -> bool:
        """Deliver again, with a clean record: the failures that disabled it are forgotten
        (they would otherwise count towards disabling it again at once). Returns whether the
        endpoint was disabled, that is whether its pending deliveries must be woken."""
        if self.enabled:
            return False
        self.status = EndpointStatus.ENABLED.value
        self.disabled_reason = None
        self.failing_since = None
        self.failed_attempts = 0
        self.updated_at = at
        return True

    def rotate_secret(self, sealed_secret: str, keep_current_for: timedelta, at: datetime) -> None:
        """The new secret signs from now on; the current one keeps signing too until
        `keep_current_for` has passed (0: it stops at once). An older one still live is
        dropped: the newest old secret is the one a receiver may not have switched from."""
        if not timedelta(0) <= keep_current_for <= MAX_ROTATION_OVERLAP:
            raise ValueError("the old secret signs for 0 to 24 hours")
        if keep_current_for > timedelta(0):
            self.previous_secret = self.secret
            self.previous_secret_expires_at = at + keep_current_for
        else:
            self.previous_secret = None
            self.previous_secret_expires_at = None
        self.secret = sealed_secret
        self.updated_at = at

    def live_secrets(self, at: datetime) -> list[str]:
        """The sealed secrets that sign a delivery sent at `at`: the current one first."""
        expires = self.previous_secret_expires_at
        if self.previous_secret is not None and expires is not None and at < expires:
            return [self.secret, self.previous_secret]
        return [self.secret]

    def test_delivery(
        self, event_id: uuid.UUID, event_type: str, at: datetime
    ) -> "WebhookDelivery":
        """The delivery of a test event to this endpoint alone (never fanned out)."""
        if not self.enabled:
            raise EndpointIsDisabled(
                "The endpoint is disabled; enable it (PATCH status: enabled) to test it."
            )
        return WebhookDelivery(
            id=uuid7(),
            endpoint_id=self.id,
            event_id=event_id,
            event_type=event_type,
            status=DeliveryStatus.PENDING.value,
            attempts=0,
            next_attempt_at=at,
            created_at=at,
            updated_at=at,
        )

    def disable(self, reason: str, at: datetime) -> None:
        """Stop delivering (after a 410, after days of failures, or on request)."""
        if not self.enabled:
            return
        self.status = EndpointStatus.DISABLED.value
        self.disabled_reason = reason
        self.updated_at = at
        self.record(WebhookEndpointDisabled(self.id, reason))


class WebhookSubscription(TenantOwned, Base):
    """One entry of an endpoint's enabledEvents: a type, a `prefix.*` or `*`."""

    __tablename__ = "webhook_subscriptions"
    __table_args__ = (
        ForeignKeyConstraint(
            ["tenant_id", "endpoint_id"],
            ["webhook_endpoints.tenant_id", "webhook_endpoints.id"],
            ondelete="CASCADE",
        ),
        Index("ix_webhook_subscriptions_tenant_pattern", "tenant_id", "pattern", "endpoint_id"),
    )

    endpoint_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    pattern: Mapped[str] = mapped_column(String(64), primary_key=True)


class WebhookDelivery(TenantOwned, Base):
    """One event for one endpoint: the same `webhook-id` (the event id) on every attempt."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        ForeignKeyConstraint(
            ["tenant_id", "endpoint_id"],
            ["webhook_endpoints.tenant_id", "webhook_endpoints.id"],
            ondelete="CASCADE",
        ),
        ForeignKeyConstraint(["tenant_id", "event_id"], ["events.tenant_id", "events.id"]),
        UniqueConstraint("tenant_id", "endpoint_id", "event_id"),
        # What a dispatcher sends next: an endpoint's pending deliveries in event order.
        Index(
            "ix_webhook_deliveries_due",
            "tenant_id",
            "endpoint_id",
            "event_id",
            postgresql_where=_PENDING,
            sqlite_where=_PENDING,
        ),
        Index(
            "ix_webhook_deliveries_tenant_listed", "tenant_id", "endpoint_id", "created_at", "id"
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid7)
    endpoint_id: Mapped[uuid.UUID]
    event_id: Mapped[uuid.UUID]
    event_type: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default=DeliveryStatus.PENDING.value)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # None once the delivery is final (succeeded, or failed with no retry left).
    next_attempt_at: Mapped[datetime | None]
    last_attempt_at: Mapped[datetime | None] = mapped_column(default=None)
    last_response_status: Mapped[int | None] = mapped_column(Integer, default=None)
    # The W3C trace context of the transaction that recorded the event; None untraced.
    trace_context: Mapped[dict[str, str] | None] = mapped_column(default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class WebhookAttempt(TenantOwned, Base):
    __tablename__ = "webhook_attempts"
    __table_args__ = (
        ForeignKeyConstraint(
            ["tenant_id", "delivery_id"],
            ["webhook_deliveries.tenant_id", "webhook_deliveries.id"],
            ondelete="CASCADE",
        ),
    )

    delivery_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    number: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime]
    response_status: Mapped[int | None] = mapped_column(Integer)
    duration_ms: Mapped[int] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(String(500))
    # At most 1 KiB of what the receiver answered (API.md).
    response_body: Mapped[str | None] = mapped_column(String(1024))
