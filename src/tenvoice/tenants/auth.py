"""Who is calling: the admin key, or a tenant API key; and for which tenant.

The tenant of a request comes from its credential and nowhere else: an API key acts as its
own tenant; the admin key acts as the tenant named by `X-Tenant-Id`.
"""

import hmac
import uuid
from dataclasses import dataclass

from fastapi import Request
from sqlalchemy import select

from tenvoice.platform import logs
from tenvoice.platform.db import Database
from tenvoice.platform.errors import AppError
from tenvoice.platform.idempotency import Owner
from tenvoice.platform.ratelimit import Caller
from tenvoice.platform.tenancy import Actor, RequestContext, current_request_id
from tenvoice.platform.tokens import token_hash
from tenvoice.tenants import errors
from tenvoice.tenants.keycache import ApiKeyCache
from tenvoice.tenants.keys import KEY_PREFIX
from tenvoice.tenants.models import ApiKey, Tenant

ADMIN = Actor("admin", None)
# Where a request's resolved credential is kept, so that the rate limiter, the idempotency
# layer and the route share one key lookup; a credential that does not authenticate is kept
# too (its error), so that it is not looked up again either.
_RESOLVED = "tenvoice.credential"


@dataclass(frozen=True, slots=True)
class Credential:
    actor: Actor
    tenant_id: uuid.UUID | None = None  # an API key's own tenant
    tenant_rate_limit: str | None = None  # that tenant's own budget, if the admin set one


async def _authenticate(request: Request) -> Credential:
    resolved: Credential | AppError | None = request.scope.get(_RESOLVED)
    if resolved is None:
        try:
            resolved = await _resolve(request)
        except AppError as exc:
            resolved = exc
        request.scope[_RESOLVED] = resolved
        if isinstance(resolved, Credential) and resolved.tenant_id is not None:
            logs.bind(tenant_id=str(resolved.tenant_id))
    if isinstance(resolved, AppError):
        raise resolved
    return resolved


async def _resolve(request: Request) -> Credential:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise errors.MissingCredentials("Send `Authorization: Bearer <key>`.")
    admin_key: str | None = request.app.state.settings.admin_key
    if admin_key and hmac.compare_digest(token.encode(), admin_key.encode()):
        return Credential(ADMIN)
    if not token.startswith(KEY_PREFIX):
        raise errors.InvalidApiKey("The key is not valid.")
    key_hash = token_hash(token)
    cache: ApiKeyCache | None = getattr(request.app.state, "api_keys", None)
    if cache is not None and (cached := cache.get(key_hash)) is not None:
        actor = Actor("api_key", str(cached.key_id))
        return Credential(actor, cached.tenant_id, cached.tenant_rate_limit)
    generation = cache.generation if cache is not None else 0
    db: Database = request.app.state.db
    # The primary, never a replica: a lagging copy would still accept a key just revoked, and
    # the cache would keep that answer. The tenant's budget comes along in the same query.
    async with db.lookup(primary=True) as connection:
        found = (
            await connection.execute(
                select(ApiKey.tenant_id, ApiKey.id, ApiKey.revoked_at, Tenant.rate_limit)
                .join(Tenant, Tenant.id == ApiKey.tenant_id)
                .where(ApiKey.key_hash == key_hash)
            )
        ).first()
    if found is None or found.revoked_at is not None:
        raise errors.InvalidApiKey("The key is not valid or has been revoked.")
    if cache is not None:
        cache.put(key_hash, found.id, found.tenant_id, generation, found.rate_limit)
    return Credential(Actor("api_key", str(found.id)), found.tenant_id, found.rate_limit)


async def admin_context(request: Request) -> RequestContext:
    actor = (await _authenticate(request)).actor
    if actor.type != "admin":
        raise errors.AdminRequired("Tenant and key management needs the platform admin key.")
    return RequestContext(actor, None, current_request_id.get())


async def tenant_context(request: Request) -> RequestContext:
    credential = await _authenticate(request)
    actor, key_tenant = credential.actor, credential.tenant_id
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
        actor = (await _authenticate(request)).actor
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


async def rate_limit_caller(request: Request) -> Caller | None:
    """Whose budgets a request spends: its credential's, and an API key's tenant's too.

    The admin spends only its own, whatever tenant it names: it is not one of the tenant's
    keys, and a tenant's budget must not be spent by someone else. None when the credential
    does not authenticate (the route refuses it).
    """
    try:
        credential = await _authenticate(request)
    except AppError:
        return None
    if credential.actor.type == "admin":
        return Caller("admin")
    tenant = str(credential.tenant_id)
    return Caller(f"key:{credential.actor.id}", tenant, credential.tenant_rate_limit)
