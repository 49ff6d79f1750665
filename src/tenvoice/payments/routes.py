from collections.abc import Awaitable, Callable
from typing import Annotated, TypeVar
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Request
from pydantic import ValidationError

from tenvoice.api import Paging, TenantReader, TenantUow
from tenvoice.credits import queries as credit_queries
from tenvoice.credits import refunds
from tenvoice.credits.errors import RefundNotFound
from tenvoice.gateway.signing import verify
from tenvoice.payments import commands, queries
from tenvoice.payments.errors import PaymentNotFound
from tenvoice.payments.models import PaymentStatus
from tenvoice.payments.schemas import (
    GatewayEvent,
    PaymentCreate,
    PaymentOut,
    WebhookAck,
    payment_view,
)
from tenvoice.platform.db import Database
from tenvoice.platform.errors import (
    FieldError,
    ServiceUnavailable,
    ValidationFailed,
)
from tenvoice.platform.http import field_path
from tenvoice.platform.messages import EventHandlers
from tenvoice.platform.pagination import Page
from tenvoice.platform.schemas import (
    choices,
    documented_choices,
    inline_schema,
    problem_responses,
)
from tenvoice.platform.strict_input import decode_json
from tenvoice.platform.tenancy import Actor, RequestContext, current_request_id
from tenvoice.platform.uow import UnitOfWork

router = APIRouter(
    prefix="/api/payments",
    tags=["payments"],
    responses=problem_responses(400, 401, 403, 404, 409, 413, 415, 422),
)


async def payment_filters(
    invoice_id: Annotated[UUID | None, Query(alias="invoiceId")] = None,
    status: Annotated[
        list[Annotated[str, documented_choices(PaymentStatus)]] | None, Query(max_length=100)
    ] = None,
) -> queries.PaymentFilters:
    return queries.PaymentFilters(
        invoice_id=invoice_id, statuses=choices("status", status or [], PaymentStatus)
    )


@router.post("", status_code=201)
async def attempt_payment(body: PaymentCreate, uow: TenantUow) -> PaymentOut:
    command = commands.AttemptPayment(body.invoice_id, body.amount, body.method, body.payment_token)
    return payment_view(await uow.run(commands.attempt_payment, command))


@router.get("")
async def list_payments(
    session: TenantReader,
    page: Paging,
    filters: Annotated[queries.PaymentFilters, Depends(payment_filters)],
) -> Page[PaymentOut]:
    return await queries.list_payments(session, filters, page)


@router.get("/{payment_id}")
async def get_payment(payment_id: UUID, session: TenantReader) -> PaymentOut:
    return await queries.get_payment(session, payment_id)


webhook_router = APIRouter(prefix="/api/webhooks", tags=["webhooks"])
GATEWAY = Actor("gateway", None)
C = TypeVar("C")


@webhook_router.post(
    "/payments",
    responses=problem_responses(400, 401, 404, 413, 422),
    openapi_extra={
        "parameters": [
            {"name": name, "in": "header", "required": True, "schema": {"type": "string"}}
            for name in ("webhook-id", "webhook-timestamp", "webhook-signature")
        ],
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": inline_schema(GatewayEvent)}},
        },
    },
)
async def payment_webhook(request: Request) -> WebhookAck:
    """A signed payment webhook from the gateway (Standard Webhooks); no API key."""
    body = await request.body()
    secret: str | None = request.app.state.settings.gateway_webhook_secret
    if not secret:
        # Our configuration, not the sender's fault: the gateway should retry once it is set.
        raise ServiceUnavailable("Webhooks are not configured (TENVOICE_GATEWAY_WEBHOOK_SECRET).")
    webhook_id = verify(secret, request.headers, body)
    if len(webhook_id) > 255:
        raise ValidationFailed("webhook-id", "must be at most 255 characters")
    event = _parse(body)
    db: Database = request.app.state.db
    data = event.data
    if event.about_refund:
        assert data.refund_id is not None
        async with db.lookup() as connection:
            tenant_id = await credit_queries.refund_tenant(connection, data.refund_id)
        if tenant_id is None:
            raise RefundNotFound(f"No refund {data.refund_id}.")
        outcome = await _apply(
            request,
            tenant_id,
            refunds.apply_refund_event,
            refunds.ApplyRefundEvent(
                webhook_id=webhook_id,
                type=event.type,
                refund_id=data.refund_id,
                gateway_reference=data.gateway_reference,
                amount=data.amount,
                currency=data.currency,
                failure_code=data.failure_code,
            ),
        )
        return WebhookAck(status=outcome)
    assert data.payment_id is not None
    async with db.lookup() as connection:
        tenant_id = await queries.payment_tenant(connection, data.payment_id)
    if tenant_id is None:
        raise PaymentNotFound(f"No payment {data.payment_id}.")
    command = commands.ApplyGatewayEvent(
        webhook_id=webhook_id,
        type=event.type,
        payment_id=data.payment_id,
        gateway_reference=data.gateway_reference,
        amount=data.amount,
        currency=data.currency,
        failure_code=data.failure_code,
        failure_message=data.failure_message,
    )
    return WebhookAck(
        status=await _apply(request, tenant_id, commands.apply_gateway_event, command)
    )


async def _apply(
    request: Request,
    tenant_id: UUID,
    handler: Callable[[UnitOfWork, C], Awaitable[str]],
    command: C,
) -> str:
    # No credential names the tenant here: the signed payment or refund does, so the unit of
    # work is opened by hand rather than through TenantUow.
    db: Database = request.app.state.db
    handlers: EventHandlers = request.app.state.event_handlers
    context = RequestContext(GATEWAY, tenant_id, current_request_id.get())
    async with db.write(tenant_id) as session:
        return await UnitOfWork(session, context, handlers).run(handler, command)


def _parse(body: bytes) -> GatewayEvent:
    document = decode_json(body)
    try:
        event = GatewayEvent.model_validate(document)
    except ValidationError as exc:
        fields = [FieldError(field_path(e["loc"]), e["msg"]) for e in exc.errors()]
        first, *more = fields
        raise ValidationFailed(first.field, first.message, *more) from None
    missing = event.missing_subject()
    if missing is not None:
        raise ValidationFailed(missing, "Field required")
    return event
