"""Rotating an endpoint's secret, and its test event (API.md, Outbound webhooks)."""

import uuid
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from tenvoice.events.models import Event
from tenvoice.platform.db import Database, utcnow
from tenvoice.webhooks.secrets import SecretBox
from tests.conftest import SECRETS_KEY, TenantHandle
from tests.problems import assert_problem, error_fields
from tests.webhooks.test_endpoints import (
    deliveries,
    dispatch_jobs,
    every_stored_text,
    make_endpoint,
    stored_endpoint,
)

BOX = SecretBox(SECRETS_KEY)


def near(moment: Any, expected: Any, slack: timedelta = timedelta(seconds=30)) -> bool:
    return bool(abs(moment - expected) < slack)


async def rotate(
    client: httpx.AsyncClient, tenant: TenantHandle, endpoint_id: str, **body: Any
) -> str:
    response = await client.post(
        f"/api/webhook-endpoints/{endpoint_id}/rotate-secret", json=body, headers=tenant.headers
    )
    assert response.status_code == 200, response.text
    assert response.json().keys() == {"secret"}
    secret: str = response.json()["secret"]
    assert secret.startswith("whsec_")
    return secret


async def test_rotation_keeps_the_old_secret_signing_for_a_day_by_default(
    client: httpx.AsyncClient, db: Database, tenant_a: TenantHandle
) -> None:
    created = await make_endpoint(client, tenant_a)
    first = created["secret"]
    second = await rotate(client, tenant_a, created["id"])
    assert second != first

    stored = await stored_endpoint(db, tenant_a, created["id"])
    tenant, endpoint = stored.tenant_id, stored.id
    assert BOX.open(stored.secret, tenant, endpoint) == second
    assert stored.previous_secret is not None
    assert stored.previous_secret_expires_at is not None
    assert BOX.open(stored.previous_secret, tenant, endpoint) == first
    assert near(stored.previous_secret_expires_at, utcnow() + timedelta(hours=24))
    # Both sign until the old one expires; then the new one alone.
    now = utcnow()
    assert [BOX.open(s, tenant, endpoint) for s in stored.live_secrets(now)] == [second, first]
    later = stored.previous_secret_expires_at + timedelta(seconds=1)
    assert [BOX.open(s, tenant, endpoint) for s in stored.live_secrets(later)] == [second]
    assert not any("whsec_" in text for text in await every_stored_text(db, tenant_a))

    fetched = await client.get(f"/api/webhook-endpoints/{created['id']}", headers=tenant_a.headers)
    assert "secret" not in fetched.json()
    assert fetched.json()["updatedAt"] > created["updatedAt"]


async def test_rotation_with_no_overlap_drops_the_old_secret_at_once(
    client: httpx.AsyncClient, db: Database, tenant_a: TenantHandle
) -> None:
    created = await make_endpoint(client, tenant_a)
    await rotate(client, tenant_a, created["id"], expireCurrentInHours=12)
    newest = await rotate(client, tenant_a, created["id"], expireCurrentInHours=0)
    stored = await stored_endpoint(db, tenant_a, created["id"])
    assert (stored.previous_secret, stored.previous_secret_expires_at) == (None, None)
    assert BOX.open(stored.secret, stored.tenant_id, stored.id) == newest
    assert stored.live_secrets(utcnow()) == [stored.secret]


async def test_a_second_rotation_keeps_the_newest_old_secret(
    client: httpx.AsyncClient, db: Database, tenant_a: TenantHandle
) -> None:
    created = await make_endpoint(client, tenant_a)
    second = await rotate(client, tenant_a, created["id"], expireCurrentInHours=24)
    third = await rotate(client, tenant_a, created["id"], expireCurrentInHours=2)
    stored = await stored_endpoint(db, tenant_a, created["id"])
    tenant, endpoint = stored.tenant_id, stored.id
    opened = [BOX.open(s, tenant, endpoint) for s in stored.live_secrets(utcnow())]
    assert opened == [third, second]
    assert created["secret"] not in opened
    assert near(stored.previous_secret_expires_at, utcnow() + timedelta(hours=2))


async def test_rotation_with_no_body_takes_the_default(
    client: httpx.AsyncClient, db: Database, tenant_a: TenantHandle
) -> None:
    created = await make_endpoint(client, tenant_a)
    response = await client.post(
        f"/api/webhook-endpoints/{created['id']}/rotate-secret", headers=tenant_a.headers
    )
    assert response.status_code == 200, response.text
    stored = await stored_endpoint(db, tenant_a, created["id"])
    assert near(stored.previous_secret_expires_at, utcnow() + timedelta(hours=24))


@pytest.mark.parametrize("body", [{"expireCurrentInHours": h} for h in (-1, 25, 1.5, "soon")])
async def test_rotation_validation(
    client: httpx.AsyncClient, db: Database, tenant_a: TenantHandle, body: dict[str, Any]
) -> None:
    created = await make_endpoint(client, tenant_a)
    before = (await stored_endpoint(db, tenant_a, created["id"])).secret
    response = await client.post(
        f"/api/webhook-endpoints/{created['id']}/rotate-secret", json=body, headers=tenant_a.headers
    )
    problem = assert_problem(response, 422, "validation_failed")
    assert error_fields(problem) == {"expireCurrentInHours"}
    assert (await stored_endpoint(db, tenant_a, created["id"])).secret == before


async def test_rotation_refuses_unknown_fields(
    client: httpx.AsyncClient, tenant_a: TenantHandle
) -> None:
    created = await make_endpoint(client, tenant_a)
    response = await client.post(
        f"/api/webhook-endpoints/{created['id']}/rotate-secret",
        json={"expiresInHours": 1},
        headers=tenant_a.headers,
    )
    assert error_fields(assert_problem(response, 422, "validation_failed")) == {"expiresInHours"}


async def test_a_rotation_retry_is_refused_not_replayed(
    client: httpx.AsyncClient, db: Database, tenant_a: TenantHandle
) -> None:
    created = await make_endpoint(client, tenant_a)
    path = f"/api/webhook-endpoints/{created['id']}/rotate-secret"
    headers = {**tenant_a.headers, "Idempotency-Key": "rotate-1"}
    first = await client.post(path, json={"expireCurrentInHours": 1}, headers=headers)
    assert first.status_code == 200, first.text
    retry = await client.post(path, json={"expireCurrentInHours": 1}, headers=headers)
    assert_problem(retry, 409, "idempotency_key_secret_not_replayable")
    assert "whsec_" not in retry.text
    stored = await stored_endpoint(db, tenant_a, created["id"])
    # It ran once: the secret it showed is the current one, the first is the previous.
    assert BOX.open(stored.secret, stored.tenant_id, stored.id) == first.json()["secret"]
    assert stored.previous_secret is not None
    assert BOX.open(stored.previous_secret, stored.tenant_id, stored.id) == created["secret"]
    assert not any("whsec_" in text for text in await every_stored_text(db, tenant_a))


async def events_of(db: Database, tenant: TenantHandle, event_id: uuid.UUID) -> Event:
    async with db.read(uuid.UUID(tenant.id)) as session:
        event = await session.scalar(select(Event).where(Event.id == event_id))
    assert event is not None
    return event


async def test_the_test_event_goes_to_this_endpoint_alone(
    client: httpx.AsyncClient, db: Database, tenant_a: TenantHandle
) -> None:
    tested = await make_endpoint(client, tenant_a, enabledEvents=["*"])
    bystander = await make_endpoint(client, tenant_a, enabledEvents=["*"])
    path = f"/api/webhook-endpoints/{tested['id']}/test"

    response = await client.post(path, headers=tenant_a.headers)
    assert response.status_code == 202, response.text
    assert response.json().keys() == {"deliveryId"}
    [delivery] = await deliveries(db, tenant_a, tested["id"])
    assert str(delivery.id) == response.json()["deliveryId"]
    assert (delivery.status, delivery.attempts) == ("pending", 0)
    assert delivery.event_type == "webhook_endpoint.test"
    assert delivery.next_attempt_at is not None
    assert near(delivery.next_attempt_at, utcnow())
    assert await deliveries(db, tenant_a, bystander["id"]) == []
    assert await dispatch_jobs(db, tested["id"]) == 1
    assert await dispatch_jobs(db, bystander["id"]) == 0

    event = await events_of(db, tenant_a, delivery.event_id)
    assert event.event_type == "webhook_endpoint.test"
    assert (event.entity_type, str(event.entity_id)) == ("webhook_endpoint", tested["id"])
    assert (event.actor_type, event.actor_id) == ("api_key", tenant_a.key_id)
    fetched = await client.get(f"/api/webhook-endpoints/{tested['id']}", headers=tenant_a.headers)
    assert event.data == {"endpointId": tested["id"], "object": fetched.json()}
    assert "whsec_" not in str(event.data)

    again = await client.post(path, headers=tenant_a.headers)
    assert again.status_code == 202, again.text
    assert again.json()["deliveryId"] != response.json()["deliveryId"]
    assert len({d.event_id for d in await deliveries(db, tenant_a, tested["id"])}) == 2


async def test_a_disabled_endpoint_cannot_be_tested(
    client: httpx.AsyncClient, db: Database, tenant_a: TenantHandle
) -> None:
    created = await make_endpoint(client, tenant_a)
    path = f"/api/webhook-endpoints/{created['id']}"
    disabled = await client.patch(path, json={"status": "disabled"}, headers=tenant_a.headers)
    assert disabled.status_code == 200, disabled.text
    response = await client.post(f"{path}/test", headers=tenant_a.headers)
    problem = assert_problem(response, 409, "webhook_endpoint_disabled")
    assert "enable" in problem["detail"]
    assert await deliveries(db, tenant_a, created["id"]) == []
    assert await dispatch_jobs(db, created["id"]) == 0
    # Enabled again, it can.
    await client.patch(path, json={"status": "enabled"}, headers=tenant_a.headers)
    assert (await client.post(f"{path}/test", headers=tenant_a.headers)).status_code == 202
