"""Every event type a tenant can subscribe an endpoint to (API.md: Timeline, Events API).

Types of capabilities still to come are listed too: an endpoint may subscribe to what the
contract documents before the first such event exists.
"""

EVENT_TYPES = frozenset(
    {
        "customer.created",
        "customer.updated",
        "customer.deleted",
        "customer.balance_changed",
        "invoice.created",
        "invoice.updated",
        "invoice.deleted",
        "invoice.finalized",
        "invoice.sent",
        "invoice.voided",
        "invoice.marked_uncollectible",
        "invoice.paid",
        "invoice.overdue",
        "payment.attempted",
        "payment.succeeded",
        "payment.failed",
        "credit_note.created",
        "credit_note.voided",
        "refund.created",
        "refund.succeeded",
        "refund.failed",
        "webhook_endpoint.disabled",
    }
)
# Sent to one endpoint on request (POST .../test); never fanned out, so not subscribable.
TEST_EVENT_TYPE = "webhook_endpoint.test"
EVERYTHING = "*"


def prefix_pattern(event_type: str) -> str:
    """The `invoice.*` pattern that matches `event_type`."""
    return event_type.split(".", 1)[0] + ".*"


def is_known_pattern(pattern: str) -> bool:
    if pattern == EVERYTHING or pattern in EVENT_TYPES:
        return True
    return pattern.endswith(".*") and any(prefix_pattern(t) == pattern for t in EVENT_TYPES)
