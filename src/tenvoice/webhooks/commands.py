import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, func, select

from tenvoice.events.catalog import TEST_EVENT_TYPE
from tenvoice.events.models import Event
from tenvoice.platform.db import utcnow
from tenvoice.platform.ids import uuid7
from tenvoice.platform.messages import event_data
from tenvoice.platform.uow import UnitOfWork
from tenvoice.tenants.models import Tenant
from tenvoice.webhooks import fanout
from tenvoice.webhooks.errors import TooManyEndpoints, WebhookEndpointNotFound
from tenvoice.webhooks.events import WebhookEndpointTested
from tenvoice.webhooks.models import (
    DISABLED_BY_REQUEST,
    MAX_ENDPOINTS_PER_TENANT,
    EndpointStatus,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookSubscription,
)
from tenvoice.webhooks.schemas import MAX_URL_LENGTH, endpoint_json
from tenvoice.webhooks.secrets import SecretBox, new_secret
from tenvoice.webhooks.ssrf import InvalidWebhookUrl, check_url


@dataclass(frozen=True, slots=True)
class CreateEndpoint:
    url: str
    enabled_events: list[str]
    description: str | None
    metadata: dict[str, str]
    secrets: SecretBox


@dataclass(frozen=True, slots=True)
class CreatedEndpoint:
    endpoint: WebhookEndpoint
    # In plain text only here, for the one answer that shows it.
    secret: str


@dataclass(frozen=True, slots=True)
class UpdateEndpoint:
    endpoint_id: uuid.UUID
    # Attribute names (models.EDITABLE), plus "status" for an EndpointStatus.
    changes: dict[str, Any]


@dataclass(frozen=True, slots=True)
class DeleteEndpoint:
    endpoint_id: uuid.UUID


@dataclass(frozen=True, slots=True)
class RotateSecret:
    endpoint_id: uuid.UUID
    keep_current_for: timedelta
    secrets: SecretBox


@dataclass(frozen=True, slots=True)
class SendTest:
    endpoint_id: uuid.UUID


async def checked_url(url: str, *, allow_private: bool) -> str:
    """The URL as it will be saved, once the SSRF guard has passed it.

    Called before the unit of work opens: resolving a name may take a while, and no
    transaction (nor SQLite's write lock) should wait on DNS.
    """
    saved = await check_url(url, allow_private=allow_private)
    if len(saved) > MAX_URL_LENGTH:
        # The host as IDNA (xn--...) can make a URL that fit longer than the column.
        raise InvalidWebhookUrl(f"The URL is longer than {MAX_URL_LENGTH} characters.")
    return saved


async def load_endpoint(uow: UnitOfWork, endpoint_id: uuid.UUID) -> WebhookEndpoint:
    """The endpoint, locked for the rest of the transaction, read afresh."""
    endpoint = await uow.session.scalar(
        select(WebhookEndpoint)
        .where(WebhookEndpoint.id == endpoint_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if endpoint is None:
        raise WebhookEndpointNotFound(f"No webhook endpoint {endpoint_id}.")
    return uow.track(endpoint)


async def _lock_tenant(uow: UnitOfWork) -> None:
    """Creates of one tenant's endpoints take turns, so that two of them cannot both count
    15 and both insert the 16th. FOR NO KEY UPDATE: the tenant row's foreign-key checks (a
    new API key) are not held up. SQLite's write transactions take turns anyway."""
    await uow.session.execute(
        select(Tenant.id).where(Tenant.id == uow.context.tenant_id).with_for_update(key_share=True)
    )


async def create_endpoint(uow: UnitOfWork, command: CreateEndpoint) -> CreatedEndpoint:
    tenant_id = uow.context.tenant_id
    assert tenant_id is not None, "a tenant route"
    await _lock_tenant(uow)
    count = await uow.session.scalar(select(func.count(WebhookEndpoint.id)))
    if (count or 0) >= MAX_ENDPOINTS_PER_TENANT:
        raise TooManyEndpoints(
            f"A tenant has at most {MAX_ENDPOINTS_PER_TENANT} webhook endpoints; delete one "
            "first, or subscribe an existing one to more events."
        )
    secret = new_secret()
    endpoint_id = uuid7()
    endpoint = WebhookEndpoint.register(
        endpoint_id=endpoint_id,
        url=command.url,
        enabled_events=command.enabled_events,
        description=command.description,
        metadata=command.metadata,
        sealed_secret=command.secrets.seal(secret, tenant_id, endpoint_id),
        at=utcnow(),
    )
    uow.session.add(uow.track(endpoint))
    await uow.session.flush()
    uow.session.add_all(endpoint.subscriptions())
    await uow.session.flush()
    return CreatedEndpoint(endpoint, secret)


async def update_endpoint(uow: UnitOfWork, command: UpdateEndpoint) -> WebhookEndpoint:
    endpoint = await load_endpoint(uow, command.endpoint_id)
    changes = dict(command.changes)
    status = changes.pop("status", None)
    subscribed = list(endpoint.enabled_events)
    now = utcnow()
    if "enabled_events" in endpoint.change(changes, now):
        await _resubscribe(uow, endpoint, subscribed)
    if status == EndpointStatus.ENABLED and endpoint.enable(now):
        # Its deliveries waited while it was disabled; they go out again now, oldest first.
        assert uow.context.tenant_id is not None
        fanout.wake(uow.session, uow.context.tenant_id, endpoint.id)
    elif status == EndpointStatus.DISABLED:
        endpoint.disable(DISABLED_BY_REQUEST, now)
    await uow.session.flush()
    return endpoint


async def _resubscribe(uow: UnitOfWork, endpoint: WebhookEndpoint, before: list[str]) -> None:
    """The subscription rows follow enabledEvents: rows of dropped entries go, new ones come."""
    gone = [pattern for pattern in before if pattern not in endpoint.enabled_events]
    added = [pattern for pattern in endpoint.enabled_events if pattern not in before]
    if gone:
        await uow.session.execute(
            delete(WebhookSubscription).where(
                WebhookSubscription.endpoint_id == endpoint.id,
                WebhookSubscription.pattern.in_(gone),
            )
        )
    uow.session.add_all(endpoint.subscriptions(added))


async def delete_endpoint(uow: UnitOfWork, command: DeleteEndpoint) -> None:
    # Its subscriptions, deliveries and their attempts go with it (ON DELETE CASCADE); the
    # events stay in the tenant's log.
    endpoint = await load_endpoint(uow, command.endpoint_id)
    await uow.session.delete(endpoint)
    await uow.session.flush()


async def rotate_secret(uow: UnitOfWork, command: RotateSecret) -> str:
    endpoint = await load_endpoint(uow, command.endpoint_id)
    assert uow.context.tenant_id is not None
    secret = new_secret()
    sealed = command.secrets.seal(secret, uow.context.tenant_id, endpoint.id)
    endpoint.rotate_secret(sealed, command.keep_current_for, utcnow())
    await uow.session.flush()
    return secret


async def send_test(uow: UnitOfWork, command: SendTest) -> WebhookDelivery:
    """A `webhook_endpoint.test` event, delivered to this endpoint alone.

    The event row is written here, not recorded on the aggregate: an event recorded there
    would be fanned out to every endpoint subscribed to it, and this one must reach one.
    """
    endpoint = await load_endpoint(uow, command.endpoint_id)
    tenant_id, context, now = uow.context.tenant_id, uow.context, utcnow()
    assert tenant_id is not None
    tested = WebhookEndpointTested(endpoint.id)
    event = Event(
        id=uuid7(),
        event_type=TEST_EVENT_TYPE,
        entity_type=tested.entity_type,
        entity_id=tested.entity_id,
        stream_id=tested.stream_id,
        occurred_at=now,
        request_id=context.request_id,
        actor_type=context.actor.type,
        actor_id=context.actor.id,
        data={**event_data(tested), "object": endpoint_json(endpoint)},
    )
    delivery = endpoint.test_delivery(event.id, TEST_EVENT_TYPE, now)
    uow.session.add(event)
    await uow.session.flush()
    uow.session.add(delivery)
    await uow.session.flush()
    fanout.wake(uow.session, tenant_id, endpoint.id)
    return delivery
