"""Request-scoped dependencies every router uses, as `Annotated` aliases.

The edge owns the transaction: a route gets a unit of work (write) or a read session already
bound to the caller's tenant, and nothing below the route ever commits on its own.
"""

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request

from tenvoice.config import Settings
from tenvoice.invoices.links import HostedLinks, LinkTokens
from tenvoice.platform.db import Database, ReadSession
from tenvoice.platform.messages import EventHandlers
from tenvoice.platform.pagination import PageRequest, page_request
from tenvoice.platform.tenancy import RequestContext
from tenvoice.platform.uow import UnitOfWork
from tenvoice.tenants.auth import admin_context, tenant_context
from tenvoice.webhooks.secrets import SecretBox


def _db(request: Request) -> Database:
    db: Database = request.app.state.db
    return db


def _handlers(request: Request) -> EventHandlers:
    handlers: EventHandlers = request.app.state.event_handlers
    return handlers


async def _tenant_uow(
    request: Request, context: Annotated[RequestContext, Depends(tenant_context)]
) -> AsyncIterator[UnitOfWork]:
    async with _db(request).write(context.tenant_id) as session:
        yield UnitOfWork(session, context, _handlers(request))


async def _tenant_reader(
    request: Request, context: Annotated[RequestContext, Depends(tenant_context)]
) -> AsyncIterator[ReadSession]:
    async with _db(request).read(context.tenant_id) as session:
        yield session


async def _admin_uow(
    request: Request, context: Annotated[RequestContext, Depends(admin_context)]
) -> AsyncIterator[UnitOfWork]:
    async with _db(request).write(None) as session:
        yield UnitOfWork(session, context, _handlers(request))


async def _admin_reader(
    request: Request, _context: Annotated[RequestContext, Depends(admin_context)]
) -> AsyncIterator[ReadSession]:
    async with _db(request).read(None) as session:
        yield session


async def _public_links(request: Request) -> HostedLinks:
    """What the public links this response hands out (hostedUrl) are made of."""
    configured: str | None = request.app.state.settings.public_base_url
    tokens: LinkTokens = request.app.state.link_tokens
    return HostedLinks((configured or str(request.base_url)).rstrip("/"), tokens)


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def _webhook_secrets(request: Request) -> SecretBox:
    box: SecretBox = request.app.state.webhook_secrets
    return box


TenantUow = Annotated[UnitOfWork, Depends(_tenant_uow)]
TenantReader = Annotated[ReadSession, Depends(_tenant_reader)]
AdminUow = Annotated[UnitOfWork, Depends(_admin_uow)]
AdminReader = Annotated[ReadSession, Depends(_admin_reader)]
Paging = Annotated[PageRequest, Depends(page_request)]
PublicLinks = Annotated[HostedLinks, Depends(_public_links)]
AppSettings = Annotated[Settings, Depends(_settings)]
WebhookSecrets = Annotated[SecretBox, Depends(_webhook_secrets)]
