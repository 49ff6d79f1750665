"""The Events API reads past the ORM (TenantReads) and names its tenant filter itself; on
PostgreSQL row-level security alone still keeps another tenant's events out."""

import uuid

import httpx
import pytest
from sqlalchemy import select

from tenvoice.events.models import Event
from tenvoice.platform.db import Database
from tenvoice.platform.tenancy import SKIP_ORM_FILTER, TenantReads, owned_by_tenant
from tests.conftest import TenantHandle, make_customer

_EVENTS_OF_NAMED_TENANT = select(Event.tenant_id).where(owned_by_tenant(Event))


async def _seen_naming(db: Database, session_tenant: TenantHandle, named: TenantHandle) -> set[str]:
    """Tenants whose events a read in `session_tenant`'s session sees when its own filter
    names `named` (as a bug in a prebuilt statement would)."""
    async with db.read(uuid.UUID(session_tenant.id)) as session:
        reads = TenantReads(await session.connection(), uuid.UUID(named.id))
        return {str(row[0]) for row in await reads.execute(_EVENTS_OF_NAMED_TENANT)}


@pytest.mark.backend("sqlite")
async def test_without_row_level_security_a_wrong_filter_would_leak(
    client: httpx.AsyncClient, db: Database, tenant_a: TenantHandle, tenant_b: TenantHandle
) -> None:
    """What makes the PostgreSQL test below meaningful: the filter alone decides on SQLite."""
    await make_customer(client, tenant_a)
    await make_customer(client, tenant_b)
    assert await _seen_naming(db, tenant_a, tenant_b) == {tenant_b.id}


@pytest.mark.backend("postgresql")
async def test_row_level_security_alone_keeps_other_tenants_events_out(
    client: httpx.AsyncClient, db: Database, tenant_a: TenantHandle, tenant_b: TenantHandle
) -> None:
    await make_customer(client, tenant_a)
    await make_customer(client, tenant_b)
    assert await _seen_naming(db, tenant_a, tenant_b) == set()
    assert await _seen_naming(db, tenant_a, tenant_a) == {tenant_a.id}
    async with db.read(uuid.UUID(tenant_a.id)) as session:
        unfiltered = select(Event.tenant_id).execution_options(**{SKIP_ORM_FILTER: True})
        seen = {str(row[0]) for row in await session.execute(unfiltered)}
    assert seen == {tenant_a.id}
