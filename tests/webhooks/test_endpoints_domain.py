"""The endpoint's rules on their own, without a database."""

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from tenvoice.platform.ids import uuid7
from tenvoice.webhooks.errors import EndpointIsDisabled
from tenvoice.webhooks.events import WebhookEndpointDisabled
from tenvoice.webhooks.models import WebhookEndpoint

T0 = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


def endpoint() -> WebhookEndpoint:
    return WebhookEndpoint.register(
        endpoint_id=uuid7(),
        url="https://93.184.216.34/hooks",
        enabled_events=["invoice.*", "payment.succeeded"],
        description=None,
        metadata={},
        sealed_secret="sealed-1",
        at=T0,
    )


def test_a_new_endpoint_is_enabled_and_subscribed_to_each_entry() -> None:
    made = endpoint()
    assert made.enabled
    assert made.live_secrets(T0) == ["sealed-1"]
    rows = made.subscriptions()
    assert [(row.endpoint_id, row.pattern) for row in rows] == [
        (made.id, "invoice.*"),
        (made.id, "payment.succeeded"),
    ]
    assert made.pull_events() == []


def test_change_applies_what_differs_and_says_what() -> None:
    made = endpoint()
    later = T0 + timedelta(minutes=1)
    assert made.change({"url": made.url, "description": None}, later) == []
    assert made.updated_at == T0
    assert made.change({"description": "x", "metadata_": {"a": "1"}}, later) == [
        "description",
        "metadata_",
    ]
    assert (made.description, made.metadata_, made.updated_at) == ("x", {"a": "1"}, later)
    with pytest.raises(ValueError, match="secret"):
        made.change({"secret": "mine"}, later)


def test_disable_then_enable_forgets_the_failures() -> None:
    made = endpoint()
    made.failing_since, made.failed_attempts = T0, 11
    made.disable("disabled by request", T0)
    made.disable("again", T0)
    assert (made.status, made.disabled_reason) == ("disabled", "disabled by request")
    assert made.pull_events() == [WebhookEndpointDisabled(made.id, "disabled by request")]
    with pytest.raises(EndpointIsDisabled):
        made.test_delivery(uuid.uuid4(), "webhook_endpoint.test", T0)

    assert made.enable(T0) is True
    assert (made.status, made.disabled_reason) == ("enabled", None)
    assert made.failing_since is None
    assert made.failed_attempts == 0
    assert made.enable(T0) is False


def test_rotation_overlaps_for_the_given_time_then_ends() -> None:
    made = endpoint()
    made.rotate_secret("sealed-2", timedelta(hours=3), T0)
    assert made.live_secrets(T0) == ["sealed-2", "sealed-1"]
    assert made.live_secrets(T0 + timedelta(hours=3) - timedelta(microseconds=1)) == [
        "sealed-2",
        "sealed-1",
    ]
    assert made.live_secrets(T0 + timedelta(hours=3)) == ["sealed-2"]

    made.rotate_secret("sealed-3", timedelta(hours=1), T0 + timedelta(hours=1))
    assert made.live_secrets(T0 + timedelta(hours=1)) == ["sealed-3", "sealed-2"]
    made.rotate_secret("sealed-4", timedelta(0), T0 + timedelta(hours=1))
    assert made.live_secrets(T0 + timedelta(hours=1)) == ["sealed-4"]
    assert (made.previous_secret, made.previous_secret_expires_at) == (None, None)


@pytest.mark.parametrize("overlap", [timedelta(hours=-1), timedelta(hours=24, seconds=1)])
def test_rotation_overlap_is_0_to_24_hours(overlap: timedelta) -> None:
    made = endpoint()
    with pytest.raises(ValueError, match="0 to 24"):
        made.rotate_secret("sealed-2", overlap, T0)
    assert made.live_secrets(T0) == ["sealed-1"]


def test_a_test_delivery_is_due_now_for_this_endpoint() -> None:
    made = endpoint()
    event_id = uuid7()
    delivery = made.test_delivery(event_id, "webhook_endpoint.test", T0)
    assert (delivery.endpoint_id, delivery.event_id) == (made.id, event_id)
    assert (delivery.status, delivery.attempts, delivery.next_attempt_at) == ("pending", 0, T0)
