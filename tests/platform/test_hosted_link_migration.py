"""Migration 0005: the links sent before it keep working, and no plain token is left."""

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from tenvoice.config import Settings, SettingsError
from tenvoice.main import create_app
from tenvoice.platform.db import Database, async_url
from tenvoice.platform.migrate import upgrade
from tenvoice.platform.tokens import token_hash
from tests import databases
from tests.conftest import ADMIN_KEY, SECRETS_KEY, WEBHOOK_SECRET

# As finalize minted them before 0005: 256 random bits, URL-safe base64.
OLD_TOKEN = "Zq3v8kR1mN0pX7sT2wY5bD9fH4jL6cA1eG8iK0oU3rQ"
AT = datetime(2026, 11, 30, 12, tzinfo=UTC)


@dataclass(frozen=True)
class Scratch:
    owner_url: str
    app_url: str
    scan_url: str
    dialect: str


@pytest.fixture(params=["sqlite", "postgresql"])
async def scratch(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Scratch]:
    """A database of its own, migrated to 0004 (the shared ones are at head)."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'old.db'}"
        scratch = Scratch(url, url, url, "sqlite")
    else:
        request.getfixturevalue("postgres")  # the roles
        name = f"{databases.DATABASE}_m0005"
        owner_url, app_url = await databases.create_scratch(name)
        scratch = Scratch(owner_url, app_url, databases.superuser_url(name), "postgresql")
    await asyncio.to_thread(upgrade, scratch.owner_url, databases.APP_ROLE, "0004")
    yield scratch
    if request.param == "postgresql":
        await databases.drop_scratch(f"{databases.DATABASE}_m0005")


def _table(name: str, *columns: tuple[str, sa.types.TypeEngine[Any]]) -> sa.TableClause:
    return sa.table(name, *(sa.column(n, t) for n, t in columns))


_UUID, _TEXT, _INT, _TS = sa.Uuid(), sa.String(), sa.BigInteger(), sa.DateTime(timezone=True)
_BASE = (("tenant_id", _UUID), ("id", _UUID), ("created_at", _TS), ("updated_at", _TS))
TENANTS = _table("tenants", *_BASE[1:], ("name", _TEXT), ("default_currency", _TEXT),
                 ("invoice_prefix", _TEXT), ("default_tax_rate", _INT))  # fmt: skip
CUSTOMERS = _table("customers", *_BASE, ("name", _TEXT), ("email", _TEXT), ("metadata", sa.JSON()))
INVOICES = _table(
    "invoices", *_BASE, ("number", _TEXT), ("customer_id", _UUID), ("currency", _TEXT),
    ("status", _TEXT), ("issue_date", sa.Date()), ("due_date", sa.Date()), ("subtotal", _INT),
    ("tax", _INT), ("total", _INT), ("amount_paid", _INT), ("metadata", sa.JSON()),
    ("finalized_at", _TS), ("hosted_token", _TEXT),
)  # fmt: skip
LINKS = _table("hosted_invoice_links", ("tenant_id", _UUID), ("invoice_id", _UUID),
               ("token_hash", _TEXT), ("created_at", _TS))  # fmt: skip


@dataclass(frozen=True)
class OldData:
    tenant: uuid.UUID
    sent: uuid.UUID  # finalized under 0002-0004: its token in plain text and its hash
    draft: uuid.UUID


async def _seed_at_0004(scratch: Scratch) -> OldData:
    """What finalize left at 0004, written in that revision's shape."""
    data = OldData(uuid.uuid4(), uuid.uuid4(), uuid.uuid4())
    customer = uuid.uuid4()
    times = {"created_at": AT, "updated_at": AT}
    engine = create_async_engine(async_url(scratch.owner_url), poolclass=NullPool)
    async with engine.begin() as connection:
        if scratch.dialect == "postgresql":
            set_tenant = sa.text("SELECT set_config('app.tenant_id', :t, true)")
            await connection.execute(set_tenant, {"t": str(data.tenant)})
        await connection.execute(
            TENANTS.insert().values(id=data.tenant, name="Old Co", default_currency="USD",
                                    invoice_prefix="OLD", default_tax_rate=0, **times)
        )  # fmt: skip
        await connection.execute(
            CUSTOMERS.insert().values(tenant_id=data.tenant, id=customer, name="Ada",
                                      email="ada@example.com", metadata={}, **times)
        )  # fmt: skip
        for invoice, number in ((data.sent, "OLD-2026-00001"), (data.draft, None)):
            await connection.execute(
                INVOICES.insert().values(
                    tenant_id=data.tenant, id=invoice, number=number, customer_id=customer,
                    currency="USD", status="open" if number else "draft",
                    issue_date=date(2026, 11, 30), due_date=date(2026, 12, 30), subtotal=10000,
                    tax=0, total=10000, amount_paid=0, metadata={}, **times,
                    finalized_at=AT if number else None, hosted_token=OLD_TOKEN if number else None,
                )
            )  # fmt: skip
        await connection.execute(
            LINKS.insert().values(tenant_id=data.tenant, invoice_id=data.sent,
                                  token_hash=token_hash(OLD_TOKEN), created_at=AT)
        )  # fmt: skip
    await engine.dispose()
    return data


async def _version(scratch: Scratch) -> str:
    engine = create_async_engine(async_url(scratch.owner_url), poolclass=NullPool)
    async with engine.connect() as connection:
        version = await connection.scalar(sa.text("SELECT version_num FROM alembic_version"))
    await engine.dispose()
    return str(version)


async def test_links_sent_before_0005_keep_working_and_no_token_is_left(scratch: Scratch) -> None:
    data = await _seed_at_0004(scratch)

    # Finalized invoices need the key to get their derived links: one sentence, no change.
    with pytest.raises(SettingsError, match="TENVOICE_SECRETS_KEY"):
        await asyncio.to_thread(upgrade, scratch.owner_url, databases.APP_ROLE)
    assert await _version(scratch) == "0004"
    assert OLD_TOKEN in await databases.every_value(scratch.scan_url)

    await asyncio.to_thread(upgrade, scratch.owner_url, databases.APP_ROLE, secrets_key=SECRETS_KEY)

    settings = Settings(
        database_url=scratch.app_url,
        admin_key=ADMIN_KEY,
        gateway_webhook_secret=WEBHOOK_SECRET,
        secrets_key=SECRETS_KEY,
    )
    db = Database(scratch.app_url, pool_size=2)
    transport = httpx.ASGITransport(app=create_app(settings, db=db))
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://t.test") as client:
            admin = {"Authorization": f"Bearer {ADMIN_KEY}"}
            created = await client.post(
                f"/api/tenants/{data.tenant}/api-keys", json={"name": "k"}, headers=admin
            )
            tenant = {"Authorization": f"Bearer {created.json()['key']}"}
            sent = (await client.get(f"/api/invoices/{data.sent}", headers=tenant)).json()
            draft = (await client.get(f"/api/invoices/{data.draft}", headers=tenant)).json()
            assert draft["hostedUrl"] is None
            new_url = sent["hostedUrl"]
            new_token = new_url.removeprefix("http://t.test/hosted/invoices/")
            assert new_token != OLD_TOKEN

            for url in (f"/hosted/invoices/{OLD_TOKEN}", new_url):  # (a) and (b)
                page = await client.get(url)
                assert page.status_code == 200, url
                assert "OLD-2026-00001" in page.text
    finally:
        await db.dispose()

    stored = await databases.every_value(scratch.scan_url)  # (c)
    assert "OLD-2026-00001" in stored
    assert token_hash(OLD_TOKEN) in stored
    assert token_hash(new_token) in stored
    assert OLD_TOKEN not in stored
    assert new_token not in stored
