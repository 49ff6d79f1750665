import uuid
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import select

from tenvoice.platform.db import utcnow
from tenvoice.platform.tokens import token_hash
from tenvoice.platform.uow import UnitOfWork
from tenvoice.tenants.errors import ApiKeyNotFound, TenantNotFound
from tenvoice.tenants.keycache import announce_revocation, announce_tenant_change
from tenvoice.tenants.keys import display_prefix, generate_key
from tenvoice.tenants.models import ApiKey, Tenant


@dataclass(frozen=True, slots=True)
class CreateTenant:
    name: str
    default_currency: str
    invoice_prefix: str
    default_tax_rate: Decimal


@dataclass(frozen=True, slots=True)
class UpdateTenant:
    tenant_id: uuid.UUID
    # Only the fields the request sent, by column name.
    changes: dict[str, Any]


@dataclass(frozen=True, slots=True)
class CreateApiKey:
    tenant_id: uuid.UUID
    name: str


@dataclass(frozen=True, slots=True)
class RevokeApiKey:
    tenant_id: uuid.UUID
    key_id: uuid.UUID


@dataclass(frozen=True, slots=True)
class NewApiKey:
    record: ApiKey
    key: str


async def create_tenant(uow: UnitOfWork, command: CreateTenant) -> Tenant:
    tenant = Tenant(
        name=command.name,
        default_currency=command.default_currency,
        invoice_prefix=command.invoice_prefix,
        default_tax_rate=command.default_tax_rate,
    )
    uow.session.add(tenant)
    await uow.session.flush()
    return tenant


async def update_tenant(uow: UnitOfWork, command: UpdateTenant) -> Tenant:
    tenant = await uow.session.get(Tenant, command.tenant_id)
    if tenant is None:
        raise TenantNotFound(f"No tenant {command.tenant_id}.")
    budget_changed = (
        "rate_limit" in command.changes and command.changes["rate_limit"] != tenant.rate_limit
    )
    for name, value in command.changes.items():
        setattr(tenant, name, value)
    if budget_changed:
        # Every process keeps the tenant's budget with its cached keys.
        await announce_tenant_change(uow.session, tenant.id)
    await uow.session.flush()
    return tenant


async def create_api_key(uow: UnitOfWork, command: CreateApiKey) -> NewApiKey:
    if await uow.session.get(Tenant, command.tenant_id) is None:
        raise TenantNotFound(f"No tenant {command.tenant_id}.")
    key = generate_key()
    record = ApiKey(
        tenant_id=command.tenant_id,
        name=command.name,
        prefix=display_prefix(key),
        key_hash=token_hash(key),
    )
    uow.session.add(record)
    await uow.session.flush()
    return NewApiKey(record, key)


async def revoke_api_key(uow: UnitOfWork, command: RevokeApiKey) -> None:
    record = await uow.session.scalar(
        select(ApiKey).where(ApiKey.tenant_id == command.tenant_id, ApiKey.id == command.key_id)
    )
    if record is None:
        raise ApiKeyNotFound(f"No API key {command.key_id} for this tenant.")
    if record.revoked_at is None:
        record.revoked_at = utcnow()
        await announce_revocation(uow.session, record.id)
