"""Manual redelivery: a delivery is sent again now, whatever became of it before."""

import uuid
from dataclasses import dataclass

from sqlalchemy import select

from tenvoice.platform.db import utcnow
from tenvoice.platform.uow import UnitOfWork
from tenvoice.webhooks import fanout
from tenvoice.webhooks.errors import (
    EndpointIsDisabled,
    WebhookDeliveryNotFound,
    WebhookEndpointNotFound,
)
from tenvoice.webhooks.models import DeliveryStatus, WebhookDelivery, WebhookEndpoint


@dataclass(frozen=True, slots=True)
class RetryDelivery:
    endpoint_id: uuid.UUID
    delivery_id: uuid.UUID


async def retry_delivery(uow: UnitOfWork, command: RetryDelivery) -> WebhookDelivery:
    endpoint = await uow.session.scalar(
        select(WebhookEndpoint).where(WebhookEndpoint.id == command.endpoint_id)
    )
    if endpoint is None:
        raise WebhookEndpointNotFound(f"No webhook endpoint {command.endpoint_id}.")
    delivery = await uow.session.scalar(
        select(WebhookDelivery)
        .where(
            WebhookDelivery.id == command.delivery_id,
            WebhookDelivery.endpoint_id == command.endpoint_id,
        )
        .with_for_update()
    )
    if delivery is None:
        raise WebhookDeliveryNotFound(f"No delivery {command.delivery_id} to this endpoint.")
    if not endpoint.enabled:
        raise EndpointIsDisabled("Enable the endpoint again first (PATCH its status).")
    now = utcnow()
    delivery.status = DeliveryStatus.PENDING.value
    delivery.next_attempt_at = now
    delivery.updated_at = now
    # Sent as a retry (it has attempts), beside the endpoint's first attempts; one that had
    # none yet simply keeps its place in event order.
    assert uow.context.tenant_id is not None
    fanout.wake(uow.session, uow.context.tenant_id, endpoint.id)
    await uow.session.flush()
    return delivery
