from datetime import timedelta
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Body, Depends, Response

from tenvoice.api import AppSettings, Paging, TenantReader, TenantUow, WebhookSecrets
from tenvoice.platform.idempotency import shows_secret_once
from tenvoice.platform.pagination import Page
from tenvoice.platform.schemas import problem_responses
from tenvoice.webhooks import commands, queries
from tenvoice.webhooks.schemas import (
    QueuedTest,
    RotateSecretIn,
    SecretOut,
    WebhookEndpointCreate,
    WebhookEndpointCreated,
    WebhookEndpointOut,
    WebhookEndpointPatch,
    endpoint_view,
)

router = APIRouter(
    prefix="/api/webhook-endpoints",
    tags=["webhook endpoints"],
    responses=problem_responses(400, 401, 403, 404, 409, 413, 415, 422),
)

# The signing secret is in these answers and nowhere else in plain text, so they are never
# kept for an idempotent replay.
_SECRET_SHOWN_ONCE = shows_secret_once(
    "The request was carried out, but its answer showed a signing secret only once and it "
    "is gone; list the webhook endpoints instead, and rotate the endpoint's secret to get "
    "a new one."
)


@router.post(
    "",
    status_code=201,
    summary="Register a webhook endpoint",
    dependencies=[Depends(_SECRET_SHOWN_ONCE)],
)
async def create_webhook_endpoint(
    body: WebhookEndpointCreate, uow: TenantUow, settings: AppSettings, secrets: WebhookSecrets
) -> WebhookEndpointCreated:
    """The answer carries the endpoint's signing secret (`whsec_...`): it is shown only here."""
    url = await commands.checked_url(body.url, allow_private=settings.webhook_allow_private)
    command = commands.CreateEndpoint(
        url=url,
        enabled_events=body.enabled_events,
        description=body.description,
        metadata=body.metadata,
        secrets=secrets,
    )
    created = await uow.run(commands.create_endpoint, command)
    view = endpoint_view(created.endpoint)
    return WebhookEndpointCreated(**view.model_dump(), secret=created.secret)


@router.get("", summary="List webhook endpoints, newest first")
async def list_webhook_endpoints(session: TenantReader, page: Paging) -> Page[WebhookEndpointOut]:
    return await queries.list_endpoints(session, page)


@router.get("/{endpoint_id}", summary="Get a webhook endpoint")
async def get_webhook_endpoint(endpoint_id: UUID, session: TenantReader) -> WebhookEndpointOut:
    return await queries.get_endpoint(session, endpoint_id)


@router.patch("/{endpoint_id}", summary="Change, disable or re-enable a webhook endpoint")
async def update_webhook_endpoint(
    endpoint_id: UUID, body: WebhookEndpointPatch, uow: TenantUow, settings: AppSettings
) -> WebhookEndpointOut:
    """`status: enabled` re-enables a disabled endpoint; its pending deliveries resume."""
    changes = body.model_dump(exclude_unset=True)
    if "url" in changes:
        url = body.url
        assert url is not None  # null is refused by the model
        changes["url"] = await commands.checked_url(
            url, allow_private=settings.webhook_allow_private
        )
    if "metadata" in changes:
        changes["metadata_"] = changes.pop("metadata")
    command = commands.UpdateEndpoint(endpoint_id, changes)
    return endpoint_view(await uow.run(commands.update_endpoint, command))


@router.delete("/{endpoint_id}", status_code=204, summary="Delete a webhook endpoint")
async def delete_webhook_endpoint(endpoint_id: UUID, uow: TenantUow) -> Response:
    """Its deliveries and their attempts go with it; its events stay in the event log."""
    await uow.run(commands.delete_endpoint, commands.DeleteEndpoint(endpoint_id))
    return Response(status_code=204)


@router.post(
    "/{endpoint_id}/rotate-secret",
    summary="Rotate a webhook endpoint's signing secret",
    dependencies=[Depends(_SECRET_SHOWN_ONCE)],
)
async def rotate_webhook_endpoint_secret(
    endpoint_id: UUID,
    uow: TenantUow,
    secrets: WebhookSecrets,
    body: Annotated[RotateSecretIn | None, Body()] = None,
) -> SecretOut:
    """The new secret (shown only here) signs at once; the current one signs beside it for
    `expireCurrentInHours` more (default 24), so receivers can switch without a gap."""
    hours = (body or RotateSecretIn()).expire_current_in_hours
    command = commands.RotateSecret(endpoint_id, timedelta(hours=hours), secrets)
    return SecretOut(secret=await uow.run(commands.rotate_secret, command))


@router.post(
    "/{endpoint_id}/test", status_code=202, summary="Send a test event to a webhook endpoint"
)
async def test_webhook_endpoint(endpoint_id: UUID, uow: TenantUow) -> QueuedTest:
    """A `webhook_endpoint.test` event is queued for this endpoint alone; follow it in the
    endpoint's deliveries."""
    delivery = await uow.run(commands.send_test, commands.SendTest(endpoint_id))
    return QueuedTest(delivery_id=delivery.id)
