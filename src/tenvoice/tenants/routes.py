from uuid import UUID

from fastapi import APIRouter, Depends, Request, Response

from tenvoice.api import AdminReader, AdminUow, Paging
from tenvoice.platform.idempotency import shows_secret_once
from tenvoice.platform.pagination import Page
from tenvoice.platform.schemas import problem_responses
from tenvoice.tenants import commands, queries
from tenvoice.tenants.keycache import ApiKeyCache
from tenvoice.tenants.schemas import (
    ApiKeyCreate,
    ApiKeyCreated,
    ApiKeyOut,
    TenantCreate,
    TenantOut,
    TenantUpdate,
)

router = APIRouter(
    prefix="/api/tenants",
    tags=["tenants"],
    responses=problem_responses(400, 401, 403, 404, 413, 415, 422),
)


@router.post("", status_code=201)
async def create_tenant(body: TenantCreate, uow: AdminUow) -> TenantOut:
    command = commands.CreateTenant(
        name=body.name,
        default_currency=body.default_currency,
        invoice_prefix=body.invoice_prefix,
        default_tax_rate=body.default_tax_rate,
    )
    tenant = await uow.run(commands.create_tenant, command)
    return TenantOut.model_validate(tenant, from_attributes=True)


@router.get("")
async def list_tenants(session: AdminReader, page: Paging) -> Page[TenantOut]:
    return await queries.list_tenants(session, page)


@router.get("/{tenant_id}")
async def get_tenant(tenant_id: UUID, session: AdminReader) -> TenantOut:
    return await queries.get_tenant(session, tenant_id)


@router.patch("/{tenant_id}")
async def update_tenant(
    request: Request, tenant_id: UUID, body: TenantUpdate, uow: AdminUow
) -> TenantOut:
    command = commands.UpdateTenant(tenant_id, body.model_dump(exclude_unset=True))
    tenant = await uow.run(commands.update_tenant, command)
    # A new budget counts from this very request in this process (others hear of it through
    # NOTIFY, like a revocation).
    _forget_cached_keys(request)
    return TenantOut.model_validate(tenant, from_attributes=True)


# The new key's secret is in its answer and nowhere else, so that answer is never kept.
_KEY_SHOWN_ONCE = shows_secret_once(
    "The API key was created, but its secret is shown only once and is gone; "
    "list the tenant's API keys instead (and revoke a key whose secret is lost)."
)


@router.post("/{tenant_id}/api-keys", status_code=201, dependencies=[Depends(_KEY_SHOWN_ONCE)])
async def create_api_key(tenant_id: UUID, body: ApiKeyCreate, uow: AdminUow) -> ApiKeyCreated:
    created = await uow.run(commands.create_api_key, commands.CreateApiKey(tenant_id, body.name))
    out = ApiKeyOut.model_validate(created.record, from_attributes=True)
    return ApiKeyCreated(**out.model_dump(), key=created.key)


@router.get("/{tenant_id}/api-keys")
async def list_api_keys(tenant_id: UUID, session: AdminReader, page: Paging) -> Page[ApiKeyOut]:
    return await queries.list_api_keys(session, tenant_id, page)


@router.delete("/{tenant_id}/api-keys/{key_id}", status_code=204)
async def revoke_api_key(
    request: Request, tenant_id: UUID, key_id: UUID, uow: AdminUow
) -> Response:
    await uow.run(commands.revoke_api_key, commands.RevokeApiKey(tenant_id, key_id))
    # Other processes hear of it through NOTIFY; this one must not serve the key even for the
    # moment its own notification takes to arrive.
    _forget_cached_keys(request)
    return Response(status_code=204)


def _forget_cached_keys(request: Request) -> None:
    cache: ApiKeyCache | None = getattr(request.app.state, "api_keys", None)
    if cache is not None:
        cache.invalidate()
