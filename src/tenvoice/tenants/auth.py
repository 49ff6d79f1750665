"""Who is calling: the admin key, or a tenant API key; and for which tenant.

The tenant of a request comes from its credential and nowhere else: an API key acts as its
own tenant; the admin key acts as the tenant named by `X-Tenant-Id`.
"""

import hmac
import uuid

from fastapi import Request
from sqlalchemy import select

from tenvoice.platform import logs
from tenvoice.platform.db import Database
from tenvoice.platform.errors import AppError
from tenvoice.platform.idempotency import Owner
from tenvoice.platform.tenancy import Actor, RequestContext, current_request_id
from tenvoice.platform.tokens import token_hash
from tenvoice.tenants import errors
from tenvoice.tenants.keycache import ApiKeyCache
from tenvoice.tenants.keys import KEY_PREFIX
from tenvoice.tenants.models import ApiKey, Tenant

ADMIN = Actor("admin", None)
# Where a request's resolved credential is kept, so that the idempotency layer and the route
# share one key lookup.
_RESOLVED = "tenvoice.credential"


async def _authenticate(request: Request) -> tuple[Actor, uuid.UUID | None]:
    """The caller's actor and, for an API key, its tenant."""
    resolved: tuple[Actor, uuid.UUID | None] | None = request.scope.get(_RESOLVED)
    if resolved is None:
        resolved = request.scope[_RESOLVED] = await _resolve(request)
        if resolved[1] is not None:
            logs.bind(tenant_id=str(resolved[1]))
    return resolved


async def _resolve(request: Request) -> tuple[Actor, uuid.UUID | None]:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise errors.MissingCredentials("Send `Authorization: Bearer <key>`.")
    admin_key: str | None = request.app.state.settings.admin_key
    if admin_key and hmac.compare_digest(token.encode(), admin_key.encode()):
        return ADMIN, None
    if not token.startswith(KEY_PREFIX):
        raise errors.InvalidApiKey("The key is not valid.")
    key_hash = token_hash(token)
    cache: ApiKeyCache | None = getattr(request.app.state, "api_keys", None)
    if cache is not None and (cached := cache.get(key_hash)) is not None:
        return Actor("api_key", str(cached.key_id)), cached.tenant_id
    generation = cache.generation if cache is not None else 0
    db: Database = request.app.state.db
    # The primary, never a replica: a lagging copy would still accept a key just revoked, and
    # the cache would keep that answer.
    async with db.lookup(primary=True) as connection:
        found = (
            await connection.execute(
                select(ApiKey.tenant_id, ApiKey.id, ApiKey.revoked_at).where(
                    ApiKey.key_hash == key_hash
                )
            )
        ).first()
    if found is None or found.revoked_at is not None:
        raise errors.InvalidApiKey("The key is not valid or has been revoked.")
    if cache is not None:
        cache.put(key_hash, found.id, found.tenant_id, generation)
    return Actor("api_key", str(found.id)), found.tenant_id


async def admin_context(request: Request) -> RequestContext:
    actor, _ = await _authenticate(request)
    if actor.type != "admin":
        raise errors.AdminRequired("Tenant and key management needs the platform admin key.")
    return RequestContext(actor, None, current_request_id.get())


async def tenant_context(request: Request) -> RequestContext:
    actor, key_tenant = await _authenticate(request)
    header = request.headers.get("x-tenant-id")
    named = _parse_tenant_header(header) if header is not None else None
    if actor.type == "admin":
        if named is None:
            raise errors.TenantRequired("Name the tenant to act as with X-Tenant-Id.")
        await _require_tenant(request.app.state.db, named)
        logs.bind(tenant_id=str(named))
        return RequestContext(actor, named, current_request_id.get())
    if named is not None and named != key_tenant:
        raise errors.TenantMismatch("An API key acts only as its own tenant.")
    return RequestContext(actor, key_tenant, current_request_id.get())


def _parse_tenant_header(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value.strip())
    except ValueError:
        raise errors.InvalidTenantHeader("X-Tenant-Id must be a tenant's UUID.") from None


async def _require_tenant(db: Database, tenant_id: uuid.UUID) -> None:
    async with db.lookup() as connection:
        exists = await connection.scalar(select(Tenant.id).where(Tenant.id == tenant_id))
    if exists is None:
        raise errors.TenantNotFound("No tenant has the id in X-Tenant-Id.")


async def idempotency_scope(request: Request) -> Owner | None:
    """Whose Idempotency-Keys a request uses: its API key's own, or the admin's.

    Never the tenant's: a key shared by a tenant's credentials would replay an answer to a
    caller that may not make the request (a tenant key, the admin's new key for another
    tenant). None when the credential does not authenticate; the route then refuses it.
    """
    try:
        actor, _ = await _authenticate(request)
    except AppError:
        return None
    if actor.type != "admin":
        return Owner(f"key:{actor.id}")
    header = request.headers.get("x-tenant-id")
    try:
        tenant = str(_parse_tenant_header(header)) if header is not None else ""
    except AppError:
        # Admin routes ignore the header and still run, so the key must still hold; tenant
        # routes refuse the malformed header with a 400, which releases the key.
        tenant = ""
    return Owner("admin", tenant)
