"""What an attempt's outcome means for its delivery and its endpoint (rules, no I/O).

API.md: a 2xx succeeds; anything else is retried on the schedule (8 attempts in all), a 410
disables the endpoint at once, and an endpoint none of whose deliveries succeeded for 5 days
(and at least 10 attempts) is disabled.
"""

import random
from dataclasses import dataclass
from datetime import timedelta

from tenvoice.webhooks.models import DeliveryStatus, WebhookDelivery, WebhookEndpoint
from tenvoice.webhooks.sender import Outcome

GONE = 410
# Retry-After is honoured up to a day: a receiver cannot park a delivery for good.
MAX_RETRY_AFTER = timedelta(hours=24)
FAILING_FOR = timedelta(days=5)
FAILED_ATTEMPTS_TO_DISABLE = 10
GONE_REASON = "The endpoint answered 410 Gone."
FAILING_REASON = "No delivery succeeded for 5 days."


@dataclass(frozen=True, slots=True)
class Verdict:
    """What became of one attempt: `succeeded`, `retry` or `failed` (also the metric's label)."""

    outcome: str
    disable_reason: str | None = None


def next_wait(schedule: tuple[float, ...], attempts: int, retry_after: float | None) -> timedelta:
    """The wait after failed attempt number `attempts` (1-based), jittered by +-20% so that
    deliveries that failed together (the receiver was down) do not all come back at once."""
    wait = schedule[attempts - 1] * random.uniform(0.8, 1.2)  # noqa: S311 (not a secret)
    if retry_after is not None and retry_after > wait:
        return min(timedelta(seconds=retry_after), MAX_RETRY_AFTER)
    return timedelta(seconds=wait)


def apply(
    delivery: WebhookDelivery,
    endpoint: WebhookEndpoint,
    outcome: Outcome,
    schedule: tuple[float, ...],
) -> Verdict:
    """Record the attempt's outcome on the delivery and the endpoint's failure streak."""
    delivery.attempts += 1
    delivery.last_attempt_at = outcome.at
    delivery.last_response_status = outcome.status
    delivery.updated_at = outcome.at
    if outcome.succeeded:
        delivery.status = DeliveryStatus.SUCCEEDED.value
        delivery.next_attempt_at = None
        endpoint.failing_since = None
        endpoint.failed_attempts = 0
        return Verdict("succeeded")
    endpoint.failing_since = endpoint.failing_since or outcome.at
    endpoint.failed_attempts += 1
    reason = _disable_reason(endpoint, outcome)
    if outcome.status == GONE or delivery.attempts > len(schedule):
        delivery.status = DeliveryStatus.FAILED.value
        delivery.next_attempt_at = None
        return Verdict("failed", reason)
    delivery.next_attempt_at = outcome.at + next_wait(
        schedule, delivery.attempts, outcome.retry_after
    )
    return Verdict("retry", reason)


def _disable_reason(endpoint: WebhookEndpoint, outcome: Outcome) -> str | None:
    if outcome.status == GONE:
        return GONE_REASON
    assert endpoint.failing_since is not None
    if (
        endpoint.failing_since <= outcome.at - FAILING_FOR
        and endpoint.failed_attempts >= FAILED_ATTEMPTS_TO_DISABLE
    ):
        return FAILING_REASON
    return None
