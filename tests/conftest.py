import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypedDict

import httpx
import pytest
from fastapi import FastAPI

from tenvoice.config import Settings
from tenvoice.handlers import EVENT_HANDLERS
from tenvoice.main import create_app
from tenvoice.platform.db import Database
from tenvoice.platform.messages import EventHandlers
from tests import databases

ADMIN_KEY = "tv_admin_test_" + "x" * 32
WEBHOOK_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
SECRETS_KEY = "test-secrets-key-" + "k" * 32

# The scan that fails the session when a secret shows up in a log line.
pytest_plugins = ["tests.logscan"]


def pytest_configure(config: pytest.Config) -> None:
    # The plugin as pytest loaded it: importing it here, earlier, would keep pytest from
    # rewriting its asserts.
    plugin = config.pluginmanager.get_plugin("tests.logscan")
    assert plugin is not None
    plugin.SCAN.note_secret(ADMIN_KEY, WEBHOOK_SECRET, SECRETS_KEY)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """`@pytest.mark.backend("postgresql")` keeps only that database's variant of a test.

    A feature one database lacks (row-level security on SQLite) is not run there at all,
    rather than reported as skipped.
    """
    keep: list[pytest.Item] = []
    dropped: list[pytest.Item] = []
    for item in items:
        marker = item.get_closest_marker("backend")
        callspec = getattr(item, "callspec", None)
        backend = callspec.params.get("backend") if callspec else None
        if marker is not None and backend is not None and backend != marker.args[0]:
            dropped.append(item)
        else:
            keep.append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = keep


@dataclass(frozen=True)
class Backend:
    name: str
    url: str
    owner_url: str | None = None


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return databases.sqlite_template(tmp_path_factory.mktemp("template"))


@pytest.fixture(scope="session")
def postgres() -> tuple[str, str]:
    try:
        return databases.postgres_urls()
    except (OSError, ConnectionError) as exc:
        if databases.REQUIRE_POSTGRES:
            pytest.fail(f"PostgreSQL is required here and unreachable: {exc}")
        pytest.skip(f"PostgreSQL unreachable: {exc}")


@pytest.fixture(scope="session")
async def postgres_engines() -> AsyncIterator[dict[str, Database]]:
    """One PostgreSQL Database per URL for the whole run (opened on first use)."""
    opened: dict[str, Database] = {}
    yield opened
    for database in opened.values():
        await database.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    if request.param == "sqlite":
        template = request.getfixturevalue("sqlite_template")
        return Backend("sqlite", databases.sqlite_copy(template, tmp_path))
    owner_url, app_url = request.getfixturevalue("postgres")
    return Backend("postgresql", app_url, owner_url)


@pytest.fixture
async def db(backend: Backend, postgres_engines: dict[str, Database]) -> AsyncIterator[Database]:
    if backend.name == "sqlite":
        database = Database(backend.url, pool_size=10)
        yield database
        await database.dispose()
        return
    assert backend.owner_url is not None
    await databases.truncate(backend.owner_url)
    if backend.url not in postgres_engines:
        postgres_engines[backend.url] = Database(backend.url, pool_size=10)
    yield postgres_engines[backend.url]


@pytest.fixture
def settings(backend: Backend) -> Settings:
    return Settings(
        database_url=backend.url,
        admin_key=ADMIN_KEY,
        gateway_webhook_secret=WEBHOOK_SECRET,
        secrets_key=SECRETS_KEY,
        # The suite runs every request from one client address as fast as it can (hosted
        # pages, gateway webhooks, concurrency tests): the production budgets would refuse
        # some of them. Rate limits are tested with their own budgets (tests/platform/
        # test_rate_limits*.py); here the limiter runs, counts and answers its fields.
        **TEST_BUDGETS,
    )


class BudgetSettings(TypedDict):
    rate_limit: str
    hosted_rate_limit: str
    webhook_rate_limit: str


# Far above what any test sends, yet still limits (not switched off).
TEST_BUDGETS: BudgetSettings = {
    "rate_limit": "100000/second",
    "hosted_rate_limit": "100000/second",
    "webhook_rate_limit": "100000/second",
}


@pytest.fixture
def event_handlers() -> EventHandlers:
    return EVENT_HANDLERS


@pytest.fixture
def app(settings: Settings, db: Database, event_handlers: EventHandlers) -> FastAPI:
    return create_app(settings, db=db, event_handlers=event_handlers)


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://tenvoice.test") as c:
        yield c


@pytest.fixture
def admin() -> dict[str, str]:
    return {"Authorization": f"Bearer {ADMIN_KEY}"}


@dataclass(frozen=True)
class TenantHandle:
    id: str
    key: str
    key_id: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}


async def make_tenant(
    client: httpx.AsyncClient, admin: dict[str, str], name: str, **fields: Any
) -> TenantHandle:
    response = await client.post("/api/tenants", json={"name": name, **fields}, headers=admin)
    assert response.status_code == 201, response.text
    tenant = response.json()
    response = await client.post(
        f"/api/tenants/{tenant['id']}/api-keys", json={"name": "default"}, headers=admin
    )
    assert response.status_code == 201, response.text
    key = response.json()
    return TenantHandle(tenant["id"], key["key"], key["id"])


@pytest.fixture
async def tenant_a(client: httpx.AsyncClient, admin: dict[str, str]) -> TenantHandle:
    return await make_tenant(client, admin, "Acme", defaultTaxRate="11")


@pytest.fixture
async def tenant_b(client: httpx.AsyncClient, admin: dict[str, str]) -> TenantHandle:
    return await make_tenant(client, admin, "Globex", defaultCurrency="EUR", invoicePrefix="GLX")


async def get_ok(
    client: httpx.AsyncClient, tenant: TenantHandle, path: str, params: Any = None
) -> dict[str, Any]:
    """GET `path` as the tenant; the JSON body of its 200."""
    response = await client.get(path, params=params, headers=tenant.headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def make_customer(
    client: httpx.AsyncClient, tenant: TenantHandle, name: str = "Ada Lovelace", **fields: Any
) -> dict[str, Any]:
    body = {"name": name, "email": f"{uuid.uuid4().hex[:8]}@example.com", **fields}
    response = await client.post("/api/customers", json=body, headers=tenant.headers)
    assert response.status_code == 201, response.text
    customer: dict[str, Any] = response.json()
    return customer


STANDARD_ITEMS = [
    {"description": "Consulting", "quantity": 2, "unitPrice": "100"},
    {"description": "Support", "quantity": "1", "unitPrice": 50},
]


async def make_invoice(
    client: httpx.AsyncClient,
    tenant: TenantHandle,
    customer_id: str,
    *,
    items: list[dict[str, Any]] | None = None,
    **fields: Any,
) -> dict[str, Any]:
    body = {"customerId": customer_id, "items": items or STANDARD_ITEMS, **fields}
    response = await client.post("/api/invoices", json=body, headers=tenant.headers)
    assert response.status_code == 201, response.text
    invoice: dict[str, Any] = response.json()
    return invoice
