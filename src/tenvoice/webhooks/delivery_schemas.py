"""The delivery log on the wire: a delivery, and one with its attempts."""

from datetime import datetime
from typing import Any
from uuid import UUID

from tenvoice.platform.schemas import OutputModel


class _DeliveryFields(OutputModel):
    id: UUID
    endpoint_id: UUID
    event_id: UUID
    event_type: str
    status: str
    next_attempt_at: datetime | None
    last_attempt_at: datetime | None
    last_response_status: int | None
    created_at: datetime


class DeliveryOut(_DeliveryFields):
    # How many attempts were made.
    attempts: int


class AttemptOut(OutputModel):
    at: datetime
    response_status: int | None
    duration_ms: int
    error: str | None
    # What the receiver answered, its first 1 KiB.
    response_body: str | None


class DeliveryDetail(_DeliveryFields):
    attempts: list[AttemptOut]


def delivery_view(delivery: Any) -> DeliveryOut:
    """From the model or a selected row (same attribute names)."""
    return DeliveryOut.model_construct(**_fields(delivery), attempts=delivery.attempts)


def delivery_detail(delivery: Any, attempts: list[Any]) -> DeliveryDetail:
    return DeliveryDetail.model_construct(
        **_fields(delivery),
        attempts=[
            AttemptOut.model_construct(
                at=attempt.at,
                response_status=attempt.response_status,
                duration_ms=attempt.duration_ms,
                error=attempt.error,
                response_body=attempt.response_body,
            )
            for attempt in attempts
        ],
    )


def _fields(delivery: Any) -> dict[str, Any]:
    return {name: getattr(delivery, name) for name in _DeliveryFields.model_fields}
