"""The hand-written migrations and the ORM models describe the same schema."""

import asyncio
import uuid
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

import tenvoice.main  # noqa: F401  (imports every model onto the metadata)
from tenvoice.invoices.models import number_sort_key
from tenvoice.platform.db import Base, Database, async_url
from tenvoice.platform.migrate import upgrade
from tests import databases
from tests.conftest import Backend


def _differences(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return [
        diff
        for diff in compare_metadata(context, Base.metadata)
        # SQLite reports DateTime(timezone=True) and JSONB variants loosely; types are
        # compared on PostgreSQL, where they are exact.
        if not (connection.dialect.name == "sqlite" and diff[0][0] == "modify_type")
    ]


async def test_migrated_schema_matches_the_models(db: Database) -> None:
    async with db.write_engine.connect() as connection:
        differences = await connection.run_sync(_differences)
    assert differences == []


_TENANT = uuid.UUID("01900000-0000-7000-8000-000000000001")
_CUSTOMER = uuid.UUID("01900000-0000-7000-8000-000000000002")
_NUMBERS = {
    uuid.UUID(f"01900000-0000-7000-8000-00000000010{n}"): number
    for n, number in enumerate(["INV-2026-99999", "INV-2026-100000", "MY-PREFIX-2025-00007", None])
}


async def _invoices_at_0005(url: str) -> None:
    """A tenant's finalized invoices (and a draft), written before 0006 existed."""
    tables = {
        "tenants": sa.table(
            "tenants",
            *(sa.column(c) for c in ("name", "default_currency", "invoice_prefix")),
            sa.column("id", sa.Uuid()),
            sa.column("default_tax_rate", sa.BigInteger()),
            *(sa.column(c, sa.DateTime(timezone=True)) for c in ("created_at", "updated_at")),
        ),
        "customers": sa.table(
            "customers",
            *(sa.column(c, sa.Uuid()) for c in ("tenant_id", "id")),
            *(sa.column(c) for c in ("name", "email")),
            sa.column("metadata", sa.JSON()),
            *(sa.column(c, sa.DateTime(timezone=True)) for c in ("created_at", "updated_at")),
        ),
        "invoices": sa.table(
            "invoices",
            *(sa.column(c, sa.Uuid()) for c in ("tenant_id", "id", "customer_id")),
            *(sa.column(c) for c in ("number", "currency", "status")),
            *(sa.column(c, sa.Date()) for c in ("issue_date", "due_date")),
            *(sa.column(c, sa.BigInteger()) for c in ("subtotal", "tax", "total", "amount_paid")),
            sa.column("metadata", sa.JSON()),
            *(sa.column(c, sa.DateTime(timezone=True)) for c in ("created_at", "updated_at")),
        ),
    }
    now, today = datetime.now(UTC), date.today()
    stamps = {"created_at": now, "updated_at": now}
    engine = create_async_engine(async_url(url), poolclass=NullPool)
    async with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            # Row-level security binds the owner too: these rows are the tenant's own.
            await connection.execute(
                sa.text("SELECT set_config('app.tenant_id', :t, true)"), {"t": str(_TENANT)}
            )
        await connection.execute(
            tables["tenants"].insert(),
            [{"id": _TENANT, "name": "Old", "default_currency": "USD", "invoice_prefix": "INV",
              "default_tax_rate": 0, **stamps}],
        )  # fmt: skip
        await connection.execute(
            tables["customers"].insert(),
            [{"tenant_id": _TENANT, "id": _CUSTOMER, "name": "Ada", "email": "a@example.com",
              "metadata": {}, **stamps}],
        )  # fmt: skip
        await connection.execute(
            tables["invoices"].insert(),
            [
                {"tenant_id": _TENANT, "id": invoice_id, "customer_id": _CUSTOMER,
                 "number": number, "currency": "USD", "status": "open" if number else "draft",
                 "issue_date": today, "due_date": today, "subtotal": 0, "tax": 0, "total": 0,
                 "amount_paid": 0, "metadata": {}, **stamps}
                for invoice_id, number in _NUMBERS.items()
            ],
        )  # fmt: skip
    await engine.dispose()


async def test_0006_fills_the_number_sort_of_existing_invoices(
    backend: Backend, tmp_path: Path
) -> None:
    if backend.name == "sqlite":
        url, scratch = f"sqlite:///{tmp_path / 'upgraded.db'}", None
    else:
        scratch = f"{databases.DATABASE}_backfill"
        url, _ = await databases.create_scratch(scratch)
    try:
        await asyncio.to_thread(upgrade, url, databases.APP_ROLE, "0005")
        await _invoices_at_0005(url)
        await asyncio.to_thread(upgrade, url, databases.APP_ROLE, "head")
        sorts = await _number_sorts(url)
    finally:
        if scratch is not None:
            await databases.drop_scratch(scratch)
    assert sorts == {
        invoice_id: None if number is None else number_sort_key(number)
        for invoice_id, number in _NUMBERS.items()
    }
    assert number_sort_key("INV-2026-100000") == 2026 * 10**12 + 100_000


async def _number_sorts(url: str) -> dict[uuid.UUID, int | None]:
    engine = create_async_engine(async_url(url), poolclass=NullPool)
    async with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            await connection.execute(
                sa.text("SELECT set_config('app.tenant_id', :t, true)"), {"t": str(_TENANT)}
            )
        rows = (await connection.execute(sa.text("SELECT id, number_sort FROM invoices"))).all()
    await engine.dispose()
    return {uuid.UUID(str(row[0])): row[1] for row in rows}
