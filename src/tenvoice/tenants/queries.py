import uuid

from sqlalchemy import select

from tenvoice.platform.db import ReadSession
from tenvoice.platform.pagination import Page, PageRequest, SortColumn, paginate, sorts
from tenvoice.tenants.errors import TenantNotFound
from tenvoice.tenants.models import ApiKey, Tenant
from tenvoice.tenants.schemas import ApiKeyOut, TenantOut

_TENANT_SORT = sorts({"createdAt": SortColumn(Tenant.created_at, "datetime")}, Tenant.id)[
    "-createdAt"
]
_KEY_SORT = sorts({"createdAt": SortColumn(ApiKey.created_at, "datetime")}, ApiKey.id)["-createdAt"]
_TENANT_COLUMNS = [getattr(Tenant, name) for name in TenantOut.model_fields]
_KEY_COLUMNS = [getattr(ApiKey, name) for name in ApiKeyOut.model_fields]


async def get_tenant(session: ReadSession, tenant_id: uuid.UUID) -> TenantOut:
    row = (await session.execute(select(*_TENANT_COLUMNS).where(Tenant.id == tenant_id))).first()
    if row is None:
        raise TenantNotFound(f"No tenant {tenant_id}.")
    return TenantOut.model_validate(row._mapping)


async def list_tenants(session: ReadSession, page: PageRequest) -> Page[TenantOut]:
    result = await paginate(session, select(*_TENANT_COLUMNS), _TENANT_SORT, page)
    return Page(
        data=[TenantOut.model_validate(row._mapping) for row in result.rows],
        pagination=result.pagination,
    )


async def list_api_keys(
    session: ReadSession, tenant_id: uuid.UUID, page: PageRequest
) -> Page[ApiKeyOut]:
    await get_tenant(session, tenant_id)
    statement = select(*_KEY_COLUMNS).where(ApiKey.tenant_id == tenant_id)
    result = await paginate(session, statement, _KEY_SORT, page)
    return Page(
        data=[ApiKeyOut.model_validate(row._mapping) for row in result.rows],
        pagination=result.pagination,
    )
