"""Each tenancy layer alone stops a leak.

Layer 2 (the ORM hook) is proven on both databases with row-level security out of the
picture on SQLite; layer 3 (PostgreSQL row-level security) is proven with the ORM hook
switched off, through the same non-owner role the service uses.
"""

import uuid
from decimal import Decimal
from typing import Any

import httpx
import pytest
from sqlalchemy import func, insert, select, text

from tenvoice.credits.models import (
    BalanceTransaction,
    CreditNote,
    CreditNoteLine,
    CustomerBalance,
    Refund,
)
from tenvoice.customers.models import Customer
from tenvoice.events.models import Event
from tenvoice.invoices.models import Invoice, InvoiceItem
from tenvoice.payments.models import Payment
from tenvoice.platform.db import Base, Database, utcnow
from tenvoice.platform.tenancy import SKIP_ORM_FILTER, TenancyError
from tenvoice.webhooks.models import (
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookSubscription,
)
from tests.conftest import TenantHandle, make_customer, make_invoice

NO_ORM_FILTER = {SKIP_ORM_FILTER: True}
TENANT_TABLES: list[Any] = [
    Customer,
    Invoice,
    InvoiceItem,
    Event,
    WebhookEndpoint,
    WebhookSubscription,
    WebhookDelivery,
    WebhookAttempt,
    Payment,
    CreditNote,
    CreditNoteLine,
    Refund,
    CustomerBalance,
    BalanceTransaction,
]
# Tenant-owned tables without a model of their own.
_MORE_TENANT_TABLES = ["invoice_number_counters"]
# Platform tables that name a tenant to find it before any tenant is in scope; they hold
# ids and hashes only, never a tenant's data.
_ROUTING_TABLES = {
    "payment_routes",
    "refund_routes",
    "hosted_invoice_links",
    "outbox_jobs",
    "inbox_messages",
    "api_keys",
}


async def _seed(client: httpx.AsyncClient, db: Database, *tenants: TenantHandle) -> None:
    for tenant in tenants:
        customer = await make_customer(client, tenant)
        invoice = await make_invoice(client, tenant, customer["id"], finalize=True)
        await _seed_webhooks(db, uuid.UUID(tenant.id))
        await _seed_credits(db, uuid.UUID(tenant.id), invoice)


async def _seed_credits(db: Database, tenant_id: uuid.UUID, invoice: dict[str, Any]) -> None:
    """A paid-for payment, a credit note refunding part of it, and the customer's credit."""
    now = utcnow()
    customer_id = uuid.UUID(invoice["customerId"])
    async with db.write(tenant_id) as session:
        payment = Payment(
            invoice_id=uuid.UUID(invoice["id"]),
            amount=100,
            currency="USD",
            method="card",
            status="succeeded",
            amount_refunded=10,
            attempted_at=now,
        )
        note = CreditNote(
            number="CN-1",
            invoice_id=payment.invoice_id,
            customer_id=customer_id,
            currency="USD",
            status="issued",
            reason=None,
            memo=None,
            metadata_={},
            subtotal=20,
            tax=0,
            total=20,
            pre_payment_amount=0,
            refund_amount=10,
            credit_amount=10,
            out_of_band_amount=0,
            lines=[
                CreditNoteLine(
                    position=0,
                    invoice_item_id=None,
                    description="Goodwill",
                    quantity=None,
                    unit_amount=Decimal("0.2"),
                    tax_rate=Decimal(0),
                    subtotal=20,
                    tax=0,
                    total=20,
                )
            ],
        )
        session.add_all([payment, note])
        await session.flush()
        session.add_all(
            [
                Refund(
                    payment_id=payment.id,
                    invoice_id=payment.invoice_id,
                    credit_note_id=note.id,
                    amount=10,
                    currency="USD",
                    status="pending",
                    reason=None,
                ),
                CustomerBalance(customer_id=customer_id, currency="USD", amount=10),
                BalanceTransaction(
                    customer_id=customer_id,
                    currency="USD",
                    amount=10,
                    type="credit_note",
                    credit_note_id=note.id,
                    invoice_id=None,
                    description=None,
                    balance_after=10,
                ),
            ]
        )
        await session.commit()


async def _seed_webhooks(db: Database, tenant_id: uuid.UUID) -> None:
    """An endpoint with a subscription, and one delivery of an event with one attempt."""
    now = utcnow()
    async with db.write(tenant_id) as session:
        event = (await session.execute(select(Event.id, Event.event_type))).first()
        assert event is not None
        endpoint = WebhookEndpoint(
            url="https://hooks.example.com/in", enabled_events=["*"], metadata_={}, secret="x"
        )
        session.add(endpoint)
        await session.flush()
        session.add(WebhookSubscription(endpoint_id=endpoint.id, pattern="*"))
        delivery = WebhookDelivery(
            endpoint_id=endpoint.id,
            event_id=event.id,
            event_type=event.event_type,
            next_attempt_at=now,
        )
        session.add(delivery)
        await session.flush()
        session.add(
            WebhookAttempt(
                delivery_id=delivery.id,
                number=1,
                at=now,
                response_status=500,
                duration_ms=3,
                error=None,
                response_body="oops",
            )
        )
        await session.commit()


async def _tenants_seen(
    db: Database, as_tenant: uuid.UUID | None, model: Any, **opts: Any
) -> set[uuid.UUID]:
    async with db.read(as_tenant) as session:
        rows = await session.execute(select(model.tenant_id).distinct().execution_options(**opts))
        return {row[0] for row in rows}


async def test_orm_layer_scopes_every_tenant_owned_model(
    client: httpx.AsyncClient, db: Database, tenant_a: TenantHandle, tenant_b: TenantHandle
) -> None:
    await _seed(client, db, tenant_a, tenant_b)
    a = uuid.UUID(tenant_a.id)
    for model in TENANT_TABLES:
        assert await _tenants_seen(db, a, model) == {a}, model.__name__


async def test_orm_layer_ignores_an_explicit_filter_for_another_tenant(
    client: httpx.AsyncClient, db: Database, tenant_a: TenantHandle, tenant_b: TenantHandle
) -> None:
    await _seed(client, db, tenant_a, tenant_b)
    async with db.read(uuid.UUID(tenant_a.id)) as session:
        stolen = await session.scalar(
            select(func.count())
            .select_from(Invoice)
            .where(Invoice.tenant_id == uuid.UUID(tenant_b.id))
        )
    assert stolen == 0


async def test_session_without_tenant_sees_no_tenant_rows(
    client: httpx.AsyncClient, db: Database, tenant_a: TenantHandle
) -> None:
    await _seed(client, db, tenant_a)
    for model in TENANT_TABLES:
        assert await _tenants_seen(db, None, model) == set(), model.__name__


async def test_orm_layer_refuses_inserts_for_another_tenant(
    client: httpx.AsyncClient, db: Database, tenant_a: TenantHandle, tenant_b: TenantHandle
) -> None:
    async with db.write(uuid.UUID(tenant_a.id)) as session:
        session.add(
            Customer(
                tenant_id=uuid.UUID(tenant_b.id),
                name="Mallory",
                email="m@example.com",
                metadata_={},
            )
        )
        with pytest.raises(TenancyError):
            await session.flush()


async def test_orm_layer_stamps_the_tenant_on_insert(db: Database, tenant_a: TenantHandle) -> None:
    a = uuid.UUID(tenant_a.id)
    async with db.write(a) as session:
        customer = Customer(name="Stamped", email="s@example.com", metadata_={})
        session.add(customer)
        await session.flush()
        assert customer.tenant_id == a
        await session.rollback()


@pytest.mark.backend("sqlite")
async def test_without_either_layer_rows_would_leak_on_sqlite(
    client: httpx.AsyncClient,
    db: Database,
    tenant_a: TenantHandle,
    tenant_b: TenantHandle,
) -> None:
    """The switch used below really disables the ORM layer: on SQLite, which has no
    row-level security, the other tenant's rows then show. This is what makes the
    PostgreSQL test that follows meaningful."""
    await _seed(client, db, tenant_a, tenant_b)
    seen = await _tenants_seen(db, uuid.UUID(tenant_a.id), Invoice, **NO_ORM_FILTER)
    assert seen == {uuid.UUID(tenant_a.id), uuid.UUID(tenant_b.id)}


@pytest.mark.backend("postgresql")
async def test_row_level_security_alone_stops_the_leak(
    client: httpx.AsyncClient,
    db: Database,
    tenant_a: TenantHandle,
    tenant_b: TenantHandle,
) -> None:
    await _seed(client, db, tenant_a, tenant_b)
    a = uuid.UUID(tenant_a.id)
    for model in TENANT_TABLES:
        assert await _tenants_seen(db, a, model, **NO_ORM_FILTER) == {a}, model.__name__
        assert await _tenants_seen(db, None, model, **NO_ORM_FILTER) == set(), model.__name__


@pytest.mark.backend("postgresql")
async def test_row_level_security_refuses_writes_into_another_tenant(
    db: Database, tenant_a: TenantHandle, tenant_b: TenantHandle
) -> None:
    now = utcnow()
    async with db.write(uuid.UUID(tenant_a.id)) as session:
        # A Core insert skips the ORM's stamping hook: only the database stands in the way.
        statement = insert(Base.metadata.tables["customers"]).values(
            tenant_id=uuid.UUID(tenant_b.id),
            id=uuid.uuid4(),
            name="Mallory",
            email="m@example.com",
            metadata={},
            created_at=now,
            updated_at=now,
        )
        with pytest.raises(Exception, match="row-level security"):
            await session.execute(statement)


_TABLE_NAMES = [model.__tablename__ for model in TENANT_TABLES] + _MORE_TENANT_TABLES


def test_every_table_with_a_tenant_is_walked_here() -> None:
    """A new tenant-owned table joins the checks above (and gets row-level security)."""
    with_tenant = {
        table.name for table in Base.metadata.sorted_tables if "tenant_id" in table.columns
    }
    assert with_tenant - _ROUTING_TABLES == set(_TABLE_NAMES)


@pytest.mark.backend("postgresql")
async def test_service_role_cannot_bypass_row_level_security(db: Database) -> None:
    async with db.read() as session:
        role = (
            await session.execute(
                text(
                    "SELECT rolsuper, rolbypassrls, current_user FROM pg_roles"
                    " WHERE rolname = current_user"
                )
            )
        ).one()
        names = {"names": _TABLE_NAMES}
        owners = set(
            (
                await session.execute(
                    text("SELECT DISTINCT tableowner FROM pg_tables WHERE tablename = ANY(:names)"),
                    names,
                )
            ).scalars()
        )
        tables, forced = (
            await session.execute(
                text(
                    "SELECT count(*), bool_and(relrowsecurity AND relforcerowsecurity)"
                    " FROM pg_class WHERE relkind = 'r' AND relname = ANY(:names)"
                ),
                names,
            )
        ).one()
    assert role.rolsuper is False
    assert role.rolbypassrls is False
    assert owners
    assert role.current_user not in owners
    assert (tables, forced) == (len(_TABLE_NAMES), True)


async def _server_pid(session: Any) -> int:
    connection = await session.connection()
    pid: int = (await connection.get_raw_connection()).driver_connection.get_server_pid()
    return pid


@pytest.mark.backend("postgresql")
async def test_the_tenant_sent_with_begin_is_the_sessions_own(
    db: Database, tenant_a: TenantHandle
) -> None:
    async with db.read(uuid.UUID(tenant_a.id)) as session:
        setting = await session.scalar(text("SELECT current_setting('app.tenant_id', true)"))
        # Still set for a second statement: it lives for the transaction, not one statement.
        again = await session.scalar(text("SELECT current_setting('app.tenant_id', true)"))
    assert setting == again == tenant_a.id


@pytest.mark.backend("postgresql")
async def test_a_tenant_never_sent_does_not_ride_on_the_next_begin(
    db: Database, tenant_a: TenantHandle
) -> None:
    # One pooled connection, so the second transaction reuses the first one's connection.
    single = Database(db.url, pool_size=1)
    try:
        async with single.read(uuid.UUID(tenant_a.id)) as session:
            # The transaction begins (the tenant waits for BEGIN) but no statement is sent.
            first = await _server_pid(session)
        async with single.write_engine.begin() as connection:
            pid, setting = (
                await connection.execute(
                    text("SELECT pg_backend_pid(), current_setting('app.tenant_id', true)")
                )
            ).one()
        assert pid == first
        assert not setting
        async with single.read(None) as session:
            assert await session.scalar(text("SELECT pg_backend_pid()")) == first
            assert not await session.scalar(text("SELECT current_setting('app.tenant_id', true)"))
    finally:
        await single.dispose()
