"""Tenant isolation, layers one and two of three (the third is PostgreSQL row-level security).

1. The tenant comes only from the credential and lives in a contextvar for the request.
2. Every session is bound to that tenant when it opens; one ORM hook adds
   `tenant_id = :tenant` to every ORM statement that touches a tenant-owned model, and
   stamps `tenant_id` on every tenant-owned row it inserts.
3. On PostgreSQL the same session sets `app.tenant_id` for the transaction, which the
   row-level security policies of every tenant-owned table read (see `migrations/`).

Each layer fails closed: a session with no tenant sees no tenant-owned rows and may
insert none.
"""

import uuid
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Literal

import asyncpg
from sqlalchemy import ColumnElement, Executable, Result, bindparam, event, false, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.orm import Mapped, ORMExecuteState, Session, mapped_column, with_loader_criteria

ActorType = Literal["api_key", "admin", "gateway", "system"]


@dataclass(frozen=True, slots=True)
class Actor:
    type: ActorType
    id: str | None


@dataclass(frozen=True, slots=True)
class RequestContext:
    """Who is acting, for which tenant, under which request id."""

    actor: Actor
    tenant_id: uuid.UUID | None
    request_id: str | None


current_request_id: ContextVar[str | None] = ContextVar("current_request_id", default=None)

# Set in tests that prove the database's row-level security holds on its own.
SKIP_ORM_FILTER = "tenvoice_skip_tenant_filter"


class TenancyError(RuntimeError):
    """Code tried to write a tenant-owned row outside, or across, its tenant: a bug, not input."""


class TenantOwned:
    """Mixin of every model whose rows belong to one tenant; `tenant_id` leads its keys."""

    tenant_id: Mapped[uuid.UUID] = mapped_column(primary_key=True, sort_order=-100)


class TenantSession(Session):
    """The sync session under every async session; the tenancy hooks listen on this class."""


def bind_session(session: Session, tenant_id: uuid.UUID | None) -> None:
    session.info["tenant_id"] = tenant_id


def session_tenant(session: Session) -> uuid.UUID | None:
    tenant: uuid.UUID | None = session.info.get("tenant_id")
    return tenant


_TENANT_PARAMETER = "tenvoice_tenant_id"


def owned_by_tenant(model: type[TenantOwned]) -> ColumnElement[bool]:
    """`model.tenant_id = :tenant`: the ORM hook's criteria, and the filter each prebuilt
    statement `TenantReads` runs names itself."""
    return model.tenant_id == bindparam(_TENANT_PARAMETER)


# The criteria are built once and take the tenant as a bound parameter: a fresh lambda per
# statement, closing over the tenant, made SQLAlchemy analyse the closure on every execution
# (as much CPU as the rest of the ORM statement).
_OWN_TENANT = with_loader_criteria(
    TenantOwned,
    lambda cls: owned_by_tenant(cls),
    include_aliases=True,
    track_closure_variables=False,
)
_NO_TENANT = with_loader_criteria(
    TenantOwned, lambda cls: false(), include_aliases=True, track_closure_variables=False
)


@event.listens_for(TenantSession, "do_orm_execute")
def _scope_to_tenant(state: ORMExecuteState) -> None:
    if not (state.is_select or state.is_update or state.is_delete):
        return
    if state.execution_options.get(SKIP_ORM_FILTER):
        return
    tenant = session_tenant(state.session)
    if tenant is None:
        state.statement = state.statement.options(_NO_TENANT)
        return
    state.statement = state.statement.options(_OWN_TENANT)
    parameters: Any = state.parameters
    if isinstance(parameters, list):
        state.parameters = [{**each, _TENANT_PARAMETER: tenant} for each in parameters]
    else:
        state.parameters = {**(parameters or {}), _TENANT_PARAMETER: tenant}


@dataclass(frozen=True, slots=True)
class TenantReads:
    """Core SELECTs on a tenant session's own connection, past the ORM execution layer.

    For the hottest reads (one invoice, a page of invoices): the ORM hook, its per-statement
    cache key and ORM row loading cost more than the query. The hook does not see these
    statements, so each one filters every tenant-owned table it reads with
    `owned_by_tenant(...)`, which is bound here from the session's tenant; row-level security
    still applies on PostgreSQL, and the cross-tenant route tests cover them on SQLite.
    """

    connection: AsyncConnection
    tenant_id: uuid.UUID

    async def execute(self, statement: Executable, **parameters: Any) -> Result[Any]:
        parameters[_TENANT_PARAMETER] = self.tenant_id
        return await self.connection.execute(statement, parameters)


async def tenant_reads(session: AsyncSession) -> TenantReads:
    tenant = session_tenant(session.sync_session)
    if tenant is None:
        raise TenancyError("tenant reads need a session bound to a tenant")
    return TenantReads(await session.connection(), tenant)


@event.listens_for(TenantSession, "before_flush")
def _stamp_tenant(session: Session, _context: Any, _instances: Any) -> None:
    tenant = session_tenant(session)
    for obj in session.new:
        if not isinstance(obj, TenantOwned):
            continue
        if tenant is None:
            raise TenancyError(f"{type(obj).__name__} inserted with no tenant in scope")
        if obj.tenant_id is None:
            obj.tenant_id = tenant
        elif obj.tenant_id != tenant:
            raise TenancyError(f"{type(obj).__name__} inserted for another tenant")


class TenantBoundConnection(asyncpg.Connection):  # type: ignore[misc]  # asyncpg is untyped
    """An asyncpg connection that sets a transaction's tenant in the same round trip as BEGIN.

    The session asks for the tenant when its transaction begins, before the driver has sent
    BEGIN (asyncpg sends it with the first statement); appending `set_config` to that BEGIN
    saves a round trip on every tenant transaction. A tenant not consumed by a BEGIN is
    dropped when the connection goes back to the pool (`forget_pending_tenant`).
    """

    tenant_on_begin: str | None = None

    # The signature is asyncpg's own.
    async def execute(self, query: str, *args: Any, timeout: float | None = None) -> str:  # noqa: ASYNC109
        tenant = self.tenant_on_begin
        if tenant is not None and not args and query.startswith("BEGIN"):
            self.tenant_on_begin = None
            query = f"{query} SELECT set_config('app.tenant_id', '{tenant}', true);"
        status: str = await super().execute(query, *args, timeout=timeout)
        return status


def forget_pending_tenant(driver_connection: Any) -> None:
    if isinstance(driver_connection, TenantBoundConnection):
        driver_connection.tenant_on_begin = None


@event.listens_for(TenantSession, "after_begin")
def _set_rls_tenant(session: Session, _transaction: Any, connection: Any) -> None:
    tenant = session_tenant(session)
    # No tenant, no statement: outside a transaction that set it, the setting is unset or
    # empty, which the policies match to no row. is_local=true makes it die with the
    # transaction, so a pooled connection never carries one tenant into another's request.
    if connection.dialect.name != "postgresql":
        return
    driver = connection.connection.driver_connection
    if isinstance(driver, TenantBoundConnection) and not driver.is_in_transaction():
        # A UUID's text is hex and dashes only, so it is safe inside the SQL text.
        driver.tenant_on_begin = str(uuid.UUID(str(tenant))) if tenant is not None else None
        return
    if tenant is not None:
        connection.execute(
            text("SELECT set_config('app.tenant_id', :tenant, true)"), {"tenant": str(tenant)}
        )
