"""`Idempotency-Key` on every POST (API.md, Idempotency; Stripe's semantics where it is silent).

Everything goes through the ASGI app on both databases; the key rows are touched directly
only to stand in for time passing (purge) or for a holder that died (lock takeover).
"""

import asyncio
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import timedelta
from decimal import Decimal
from typing import Any

import httpx
import orjson
import pytest
import sqlalchemy.exc
from sqlalchemy import insert, select, update

from tenvoice.config import Settings
from tenvoice.customers.events import CustomerCreated
from tenvoice.main import create_app
from tenvoice.platform.db import Database, utcnow
from tenvoice.platform.idempotency import IN_FLIGHT, IdempotencyKey, fingerprint
from tenvoice.platform.messages import EventHandler, EventHandlers
from tenvoice.platform.uow import UnitOfWork
from tenvoice.platform.worker import Worker
from tests.conftest import STANDARD_ITEMS, TenantHandle, make_customer, make_invoice
from tests.problems import assert_problem, error_fields

REPLAYED = "idempotent-replayed"
# Upper bound on waits for the app, so that a lost wake-up fails the test instead of hanging
# it; it is kept under SQLite's 30 s busy timeout so that a lock wait shows up as a failure.
GUARD_SECONDS = 15.0


# -- helpers ---------------------------------------------------------------------------


def keyed(headers: dict[str, str], key: str) -> dict[str, str]:
    return {**headers, "Idempotency-Key": key}


def customer_body(name: str = "Ada Lovelace") -> dict[str, Any]:
    return {"name": name, "email": f"{uuid.uuid4().hex[:8]}@example.com"}


def assert_original(response: httpx.Response, status: int) -> None:
    assert response.status_code == status, response.text
    assert REPLAYED not in response.headers


def assert_replay_of(replay: httpx.Response, original: httpx.Response) -> None:
    """Stripe's replay: the first answer's status and exact bytes, marked as a replay."""
    assert replay.status_code == original.status_code, replay.text
    assert replay.content == original.content
    assert replay.headers[REPLAYED] == "true"
    assert replay.headers["content-type"] == original.headers["content-type"]
    assert replay.headers["content-length"] == str(len(original.content))


def assert_in_flight(response: httpx.Response) -> None:
    assert_problem(response, 409, "idempotency_key_in_flight")
    assert REPLAYED not in response.headers
    assert int(response.headers["retry-after"]) >= 1


async def total(client: httpx.AsyncClient, path: str, headers: dict[str, str]) -> int:
    separator = "&" if "?" in path else "?"
    response = await client.get(f"{path}{separator}includeTotal=true", headers=headers)
    assert response.status_code == 200, response.text
    count: int = response.json()["pagination"]["totalCount"]
    return count


def owner_of(tenant: TenantHandle) -> str:
    """The scope a tenant's API key files its keys under."""
    return f"key:{tenant.key_id}"


async def stored_keys(db: Database, scope: str) -> dict[str, str]:
    """The scope's key rows, key -> status."""
    async with db.autocommit() as connection:
        rows = await connection.execute(
            select(IdempotencyKey.key, IdempotencyKey.status).where(IdempotencyKey.scope == scope)
        )
        return {row.key: row.status for row in rows}


def with_handler(
    handlers: EventHandlers, event: type, extra: EventHandler
) -> dict[type, Sequence[EventHandler]]:
    # Appended after the real handlers, so the change and its timeline row are in the
    # transaction (and the database lock held) when the extra handler runs.
    combined: dict[type, Sequence[EventHandler]] = dict(handlers)
    combined[event] = [*handlers.get(event, ()), extra]
    return combined


@asynccontextmanager
async def app_client(
    settings: Settings,
    db: Database,
    handlers: EventHandlers,
    *,
    raise_app_exceptions: bool = True,
) -> AsyncIterator[httpx.AsyncClient]:
    """A second app on the same database, with its own event handlers."""
    app = create_app(settings, db=db, event_handlers=handlers)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=raise_app_exceptions)
    async with httpx.AsyncClient(transport=transport, base_url="http://tenvoice.test") as c:
        yield c


class Gate:
    """An event handler that parks its request mid-transaction until the test opens it."""

    def __init__(self) -> None:
        self.reached = asyncio.Event()
        self.opened = asyncio.Event()

    async def __call__(self, event: object, uow: UnitOfWork) -> None:
        # Written but not committed: the transaction holds its locks (SQLite's database
        # lock, PostgreSQL's row locks) for as long as the request is parked.
        await uow.session.flush()
        self.reached.set()
        await self.opened.wait()


async def _explode(event: object, uow: UnitOfWork) -> None:
    raise RuntimeError("handler exploded")


async def _database_gone(event: object, uow: UnitOfWork) -> None:
    # What the driver raises when the connection drops mid-transaction: the app answers it
    # with a 503 response rather than letting it escape, unlike a programming error.
    raise sqlalchemy.exc.OperationalError("COMMIT", None, ConnectionResetError("gone"))


async def open_invoice(client: httpx.AsyncClient, tenant: TenantHandle) -> dict[str, Any]:
    customer = await make_customer(client, tenant)
    invoice = await make_invoice(client, tenant, customer["id"])
    response = await client.post(f"/api/invoices/{invoice['id']}/finalize", headers=tenant.headers)
    assert response.status_code == 200, response.text
    finalized: dict[str, Any] = response.json()
    return finalized


# -- replays ---------------------------------------------------------------------------


async def test_invoice_create_is_replayed_and_created_once(
    client: httpx.AsyncClient, tenant_a: TenantHandle
) -> None:
    customer = await make_customer(client, tenant_a)
    body = {"customerId": customer["id"], "items": STANDARD_ITEMS}
    headers = keyed(tenant_a.headers, "create-invoice-1")

    first = await client.post("/api/invoices", json=body, headers=headers)
    assert_original(first, 201)
    again = await client.post("/api/invoices", json=body, headers=headers)
    assert_replay_of(again, first)
    # A third try is still a replay of the first, not of the (identical) second.
    third = await client.post("/api/invoices", json=body, headers=headers)
    assert_replay_of(third, first)

    assert await total(client, "/api/invoices", tenant_a.headers) == 1


async def test_customer_create_is_replayed_and_created_once(
    client: httpx.AsyncClient, tenant_a: TenantHandle
) -> None:
    body = customer_body()
    headers = keyed(tenant_a.headers, "create-customer-1")

    first = await client.post("/api/customers", json=body, headers=headers)
    assert_original(first, 201)
    again = await client.post("/api/customers", json=body, headers=headers)
    assert_replay_of(again, first)

    assert await total(client, "/api/customers", tenant_a.headers) == 1


async def test_payment_is_replayed_and_attempted_once(
    client: httpx.AsyncClient, tenant_a: TenantHandle
) -> None:
    invoice = await open_invoice(client, tenant_a)
    body = {"invoiceId": invoice["id"], "amount": "10.00", "method": "card"}
    headers = keyed(tenant_a.headers, "pay-1")

    first = await client.post("/api/payments", json=body, headers=headers)
    assert_original(first, 201)
    again = await client.post("/api/payments", json=body, headers=headers)
    assert_replay_of(again, first)

    payments = f"/api/payments?invoiceId={invoice['id']}"
    assert await total(client, payments, tenant_a.headers) == 1
    # Only the one attempt holds part of the balance: the rest can still be paid in full.
    rest = Decimal(invoice["amountDue"]) - Decimal("10.00")
    remainder = await client.post(
        "/api/payments", json={**body, "amount": str(rest)}, headers=tenant_a.headers
    )
    assert_original(remainder, 201)


async def test_finalize_replays_its_first_answer_where_a_real_second_one_is_refused(
    client: httpx.AsyncClient, tenant_a: TenantHandle
) -> None:
    customer = await make_customer(client, tenant_a)
    invoice = await make_invoice(client, tenant_a, customer["id"])
    path = f"/api/invoices/{invoice['id']}/finalize"
    headers = keyed(tenant_a.headers, "finalize-1")

    first = await client.post(path, headers=headers)
    assert_original(first, 200)
    assert first.json()["status"] == "open"
    again = await client.post(path, headers=headers)
    assert_replay_of(again, first)

    # The replay above was not a second finalize: that one is refused.
    unkeyed = await client.post(path, headers=tenant_a.headers)
    assert_problem(unkeyed, 409, "invalid_invoice_transition")
    current = await client.get(f"/api/invoices/{invoice['id']}", headers=tenant_a.headers)
    assert current.json()["number"] == first.json()["number"]


async def test_tenant_create_is_replayed_in_the_admin_scope(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    headers = keyed(admin, "create-tenant-1")
    before = await total(client, "/api/tenants", admin)

    first = await client.post("/api/tenants", json={"name": "Initech"}, headers=headers)
    assert_original(first, 201)
    again = await client.post("/api/tenants", json={"name": "Initech"}, headers=headers)
    assert_replay_of(again, first)

    assert await total(client, "/api/tenants", admin) == before + 1


async def test_a_reserialised_body_is_the_same_request(
    client: httpx.AsyncClient, tenant_a: TenantHandle
) -> None:
    customer = await make_customer(client, tenant_a)
    body = {"customerId": customer["id"], "memo": "Thanks", "items": STANDARD_ITEMS}
    compact = orjson.dumps(body)
    # Other key order at every level, other spacing: the same JSON document.
    reordered = orjson.dumps(
        {
            "items": [dict(reversed(list(item.items()))) for item in STANDARD_ITEMS],
            "memo": "Thanks",
            "customerId": customer["id"],
        },
        option=orjson.OPT_INDENT_2,
    )
    assert compact != reordered
    headers = keyed({**tenant_a.headers, "Content-Type": "application/json"}, "reserialised")

    first = await client.post("/api/invoices", content=compact, headers=headers)
    assert_original(first, 201)
    again = await client.post("/api/invoices", content=reordered, headers=headers)
    assert_replay_of(again, first)

    assert await total(client, "/api/invoices", tenant_a.headers) == 1


# -- misuse of a key -------------------------------------------------------------------


async def test_same_key_with_another_body_is_refused_and_creates_nothing(
    client: httpx.AsyncClient, tenant_a: TenantHandle
) -> None:
    headers = keyed(tenant_a.headers, "reused")
    body = customer_body("First")
    first = await client.post("/api/customers", json=body, headers=headers)
    assert_original(first, 201)

    other = await client.post("/api/customers", json=customer_body("Second"), headers=headers)
    assert_problem(other, 422, "idempotency_key_reused")
    assert REPLAYED not in other.headers
    assert await total(client, "/api/customers", tenant_a.headers) == 1

    # The refusal did not disturb the key: the first request still replays.
    assert_replay_of(await client.post("/api/customers", json=body, headers=headers), first)


async def test_same_key_on_another_path_is_refused_and_creates_nothing(
    client: httpx.AsyncClient, tenant_a: TenantHandle
) -> None:
    headers = keyed(tenant_a.headers, "one-key-two-routes")
    customer = await client.post("/api/customers", json=customer_body(), headers=headers)
    assert_original(customer, 201)

    invoice_body = {"customerId": customer.json()["id"], "items": STANDARD_ITEMS}
    other = await client.post("/api/invoices", json=invoice_body, headers=headers)
    assert_problem(other, 422, "idempotency_key_reused")
    assert await total(client, "/api/invoices", tenant_a.headers) == 0


async def test_same_key_and_body_for_another_object_is_refused(
    client: httpx.AsyncClient, tenant_a: TenantHandle
) -> None:
    customer = await make_customer(client, tenant_a)
    first, second = [await make_invoice(client, tenant_a, customer["id"]) for _ in range(2)]
    headers = keyed(tenant_a.headers, "finalize-which")

    done = await client.post(f"/api/invoices/{first['id']}/finalize", headers=headers)
    assert_original(done, 200)
    # Both bodies are empty: only the path says this is another request, not a retry.
    other = await client.post(f"/api/invoices/{second['id']}/finalize", headers=headers)
    assert_problem(other, 422, "idempotency_key_reused")
    untouched = await client.get(f"/api/invoices/{second['id']}", headers=tenant_a.headers)
    assert untouched.json()["status"] == "draft"


# -- scope -----------------------------------------------------------------------------


async def test_tenants_have_separate_keys(
    client: httpx.AsyncClient, tenant_a: TenantHandle, tenant_b: TenantHandle
) -> None:
    # The same key and the very same body: only the scope tells the two apart.
    body = customer_body()
    first_a = await client.post("/api/customers", json=body, headers=keyed(tenant_a.headers, "k"))
    first_b = await client.post("/api/customers", json=body, headers=keyed(tenant_b.headers, "k"))
    assert_original(first_a, 201)
    assert_original(first_b, 201)
    assert first_a.json()["id"] != first_b.json()["id"]

    again_b = await client.post("/api/customers", json=body, headers=keyed(tenant_b.headers, "k"))
    assert_replay_of(again_b, first_b)
    assert await total(client, "/api/customers", tenant_a.headers) == 1
    assert await total(client, "/api/customers", tenant_b.headers) == 1


async def test_admin_routes_use_the_admins_own_scope(
    client: httpx.AsyncClient, admin: dict[str, str], tenant_a: TenantHandle
) -> None:
    tenant = await client.post(
        "/api/tenants", json={"name": "Hooli"}, headers=keyed(admin, "same-key")
    )
    assert_original(tenant, 201)

    # Were the admin's key in tenant A's scope, this would be refused as a reused key.
    customer = await client.post(
        "/api/customers", json=customer_body(), headers=keyed(tenant_a.headers, "same-key")
    )
    assert_original(customer, 201)
    # Nor does the tenant's use of the key disturb the admin's.
    again = await client.post(
        "/api/tenants", json={"name": "Hooli"}, headers=keyed(admin, "same-key")
    )
    assert_replay_of(again, tenant)


async def test_a_stray_tenant_header_does_not_disable_the_key_on_admin_routes(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    # Admin routes take no tenant, so they succeed whatever X-Tenant-Id says; the key must
    # hold all the same.
    headers = keyed({**admin, "X-Tenant-Id": "not-a-uuid"}, "stray-header")
    before = await total(client, "/api/tenants", admin)

    first = await client.post("/api/tenants", json={"name": "Vandelay"}, headers=headers)
    assert_original(first, 201)
    again = await client.post("/api/tenants", json={"name": "Vandelay"}, headers=headers)
    assert await total(client, "/api/tenants", admin) == before + 1
    assert_replay_of(again, first)


# -- which answers keep the key (Stripe: only requests that ran) -----------------------


@pytest.mark.parametrize(
    "refused",
    ["validation", "malformed_json", "unauthenticated", "too_large"],
)
async def test_a_request_refused_before_it_ran_does_not_keep_the_key(
    client: httpx.AsyncClient,
    settings: Settings,
    db: Database,
    tenant_a: TenantHandle,
    refused: str,
) -> None:
    key = f"refused-{refused}"
    json_headers = keyed({**tenant_a.headers, "Content-Type": "application/json"}, key)
    if refused == "validation":
        response = await client.post(
            "/api/customers", json={"email": "x@example.com"}, headers=keyed(tenant_a.headers, key)
        )
        assert "name" in error_fields(assert_problem(response, 422, "validation_failed"))
    elif refused == "malformed_json":
        response = await client.post("/api/customers", content=b'{"name": ', headers=json_headers)
        assert_problem(response, 400, "malformed_json")
    elif refused == "unauthenticated":
        forged = {"Authorization": "Bearer tv_sk_" + "a" * 43, "Idempotency-Key": key}
        response = await client.post("/api/customers", json=customer_body(), headers=forged)
        assert_problem(response, 401, "invalid_api_key")
    else:
        oversized = orjson.dumps({**customer_body(), "pad": "x" * settings.max_body_bytes})
        response = await client.post("/api/customers", content=oversized, headers=json_headers)
        assert_problem(response, 413, "payload_too_large")
    assert await stored_keys(db, owner_of(tenant_a)) == {}

    corrected = await client.post(
        "/api/customers", json=customer_body(), headers=keyed(tenant_a.headers, key)
    )
    assert_original(corrected, 201)
    assert await total(client, "/api/customers", tenant_a.headers) == 1


async def test_a_forbidden_request_does_not_keep_the_key(
    client: httpx.AsyncClient, tenant_a: TenantHandle
) -> None:
    headers = keyed(tenant_a.headers, "forbidden-first")
    refused = await client.post("/api/tenants", json={"name": "Not mine"}, headers=headers)
    assert_problem(refused, 403, "admin_required")

    # Another path and body with the key: accepted, since the 403 never held it.
    corrected = await client.post("/api/customers", json=customer_body(), headers=headers)
    assert_original(corrected, 201)


async def test_a_conflict_after_running_keeps_the_key_and_is_replayed(
    client: httpx.AsyncClient, tenant_a: TenantHandle
) -> None:
    invoice = await open_invoice(client, tenant_a)
    path = f"/api/invoices/{invoice['id']}/finalize"
    headers = keyed(tenant_a.headers, "finalize-open")

    first = await client.post(path, headers=headers)
    assert_problem(first, 409, "invalid_invoice_transition")
    assert REPLAYED not in first.headers
    again = await client.post(path, headers=headers)
    assert_replay_of(again, first)
    assert again.json()["code"] == "invalid_invoice_transition"


async def test_amount_exceeding_the_balance_keeps_the_key(
    client: httpx.AsyncClient, tenant_a: TenantHandle
) -> None:
    invoice = await open_invoice(client, tenant_a)
    too_much = {"invoiceId": invoice["id"], "amount": "100000.00", "method": "card"}
    headers = keyed(tenant_a.headers, "overpay")

    first = await client.post("/api/payments", json=too_much, headers=headers)
    assert_problem(first, 409, "amount_exceeds_balance")
    again = await client.post("/api/payments", json=too_much, headers=headers)
    assert_replay_of(again, first)

    # The key is bound to the refused request: a corrected amount needs a new key.
    corrected = {**too_much, "amount": "10.00"}
    reused = await client.post("/api/payments", json=corrected, headers=headers)
    assert_problem(reused, 422, "idempotency_key_reused")
    payments = f"/api/payments?invoiceId={invoice['id']}"
    assert await total(client, payments, tenant_a.headers) == 0
    fresh = await client.post(
        "/api/payments", json=corrected, headers=keyed(tenant_a.headers, "overpay-2")
    )
    assert_original(fresh, 201)


@pytest.mark.parametrize(
    ("failure", "status", "code"),
    [(_explode, 500, "internal_error"), (_database_gone, 503, "service_unavailable")],
    ids=["raised", "answered"],
)
async def test_a_server_error_releases_the_key(
    client: httpx.AsyncClient,
    settings: Settings,
    db: Database,
    event_handlers: EventHandlers,
    tenant_a: TenantHandle,
    failure: EventHandler,
    status: int,
    code: str,
) -> None:
    body = customer_body()
    headers = keyed(tenant_a.headers, "server-error")
    failing = with_handler(event_handlers, CustomerCreated, failure)
    async with app_client(settings, db, failing, raise_app_exceptions=False) as broken:
        failed = await broken.post("/api/customers", json=body, headers=headers)
    assert_problem(failed, status, code)
    assert await stored_keys(db, owner_of(tenant_a)) == {}

    retried = await client.post("/api/customers", json=body, headers=headers)
    assert_original(retried, 201)
    assert await total(client, "/api/customers", tenant_a.headers) == 1


@pytest.mark.backend("postgresql")
@pytest.mark.parametrize("caller", ["tenant", "admin"])
async def test_a_key_does_not_turn_a_database_outage_into_a_500(
    settings: Settings, admin: dict[str, str], caller: str
) -> None:
    unreachable = Database("postgresql://nobody@127.0.0.1:1/none")
    app = create_app(settings, db=unreachable)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    # A tenant key needs the database to authenticate; the admin key does not, so its
    # request gets as far as claiming the key.
    credential = {"Authorization": "Bearer tv_sk_" + "a" * 43} if caller == "tenant" else admin
    path, body = (
        ("/api/customers", customer_body())
        if caller == "tenant"
        else ("/api/tenants", {"name": "X"})
    )
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://tenvoice.test") as c:
            unkeyed = await c.post(path, json=body, headers=credential)
            with_key = await c.post(path, json=body, headers=keyed(credential, "outage"))
    finally:
        await unreachable.dispose()
    # Without a key the outage is a 503 with Retry-After (test_operations); a key must not
    # change that into an internal error.
    assert_problem(unkeyed, 503, "service_unavailable")
    assert_problem(with_key, 503, "service_unavailable")
    assert with_key.headers["retry-after"] == "1"


# -- the key itself --------------------------------------------------------------------


@pytest.mark.parametrize("key", ["", "   ", "k" * 256], ids=["empty", "blank", "256-chars"])
async def test_a_key_outside_1_to_255_characters_is_refused(
    client: httpx.AsyncClient, tenant_a: TenantHandle, key: str
) -> None:
    response = await client.post(
        "/api/customers", json=customer_body(), headers=keyed(tenant_a.headers, key)
    )
    body = assert_problem(response, 422, "validation_failed")
    assert error_fields(body) == {"Idempotency-Key"}
    assert await total(client, "/api/customers", tenant_a.headers) == 0


async def test_a_255_character_key_works(client: httpx.AsyncClient, tenant_a: TenantHandle) -> None:
    body = customer_body()
    headers = keyed(tenant_a.headers, "k" * 254 + "z")
    first = await client.post("/api/customers", json=body, headers=headers)
    assert_original(first, 201)
    assert_replay_of(await client.post("/api/customers", json=body, headers=headers), first)
    assert await total(client, "/api/customers", tenant_a.headers) == 1


async def test_without_a_key_every_post_runs(
    client: httpx.AsyncClient, tenant_a: TenantHandle
) -> None:
    body = customer_body()
    first = await client.post("/api/customers", json=body, headers=tenant_a.headers)
    second = await client.post(
        "/api/customers", json={**body, "email": "other@example.com"}, headers=tenant_a.headers
    )
    assert_original(first, 201)
    assert_original(second, 201)
    assert first.json()["id"] != second.json()["id"]
    assert await total(client, "/api/customers", tenant_a.headers) == 2


async def test_get_requests_ignore_the_key(
    client: httpx.AsyncClient, db: Database, tenant_a: TenantHandle
) -> None:
    for key in ("read-key", "read-key", ""):
        response = await client.get("/api/customers", headers=keyed(tenant_a.headers, key))
        assert_original(response, 200)
    assert await stored_keys(db, owner_of(tenant_a)) == {}

    # The reads claimed nothing: a POST with the key is a first request.
    created = await client.post(
        "/api/customers", json=customer_body(), headers=keyed(tenant_a.headers, "read-key")
    )
    assert_original(created, 201)


# -- concurrency -----------------------------------------------------------------------


async def test_a_retry_while_the_first_is_running_is_refused_as_in_flight(
    client: httpx.AsyncClient,
    settings: Settings,
    db: Database,
    event_handlers: EventHandlers,
    tenant_a: TenantHandle,
) -> None:
    gate = Gate()
    body = customer_body()
    headers = keyed(tenant_a.headers, "in-flight")
    async with app_client(
        settings, db, with_handler(event_handlers, CustomerCreated, gate)
    ) as gated:
        first = asyncio.create_task(gated.post("/api/customers", json=body, headers=headers))
        try:
            async with asyncio.timeout(GUARD_SECONDS):
                # The first now holds the key and sits inside its write transaction.
                await gate.reached.wait()
                uncommitted = await total(client, "/api/customers", tenant_a.headers)
                during = await client.post("/api/customers", json=body, headers=headers)
                other_body = await client.post(
                    "/api/customers", json=customer_body("Other"), headers=headers
                )
        finally:
            gate.opened.set()
        async with asyncio.timeout(GUARD_SECONDS):
            original = await first

    assert uncommitted == 0
    assert_in_flight(during)
    assert_problem(other_body, 422, "idempotency_key_reused")
    assert_original(original, 201)
    after = await client.post("/api/customers", json=body, headers=headers)
    assert_replay_of(after, original)
    assert await total(client, "/api/customers", tenant_a.headers) == 1


async def test_twenty_concurrent_posts_with_one_key_create_one_invoice(
    client: httpx.AsyncClient, tenant_a: TenantHandle
) -> None:
    customer = await make_customer(client, tenant_a)
    body = {"customerId": customer["id"], "items": STANDARD_ITEMS}
    headers = keyed(tenant_a.headers, "stampede")

    async with asyncio.timeout(GUARD_SECONDS * 2):
        responses = await asyncio.gather(
            *(client.post("/api/invoices", json=body, headers=headers) for _ in range(20))
        )

    originals = [r for r in responses if r.status_code == 201 and REPLAYED not in r.headers]
    assert len(originals) == 1, [(r.status_code, r.headers.get(REPLAYED)) for r in responses]
    original = originals[0]
    for response in responses:
        if response is original:
            continue
        if response.status_code == 201:
            assert_replay_of(response, original)
        else:
            assert_in_flight(response)
    assert await total(client, "/api/invoices", tenant_a.headers) == 1
    assert_replay_of(await client.post("/api/invoices", json=body, headers=headers), original)


# -- expiry and takeover ---------------------------------------------------------------


async def test_maintenance_purges_expired_keys_only(
    client: httpx.AsyncClient,
    settings: Settings,
    db: Database,
    event_handlers: EventHandlers,
    tenant_a: TenantHandle,
) -> None:
    old_body, recent_body = customer_body("Old"), customer_body("Recent")
    old_headers = keyed(tenant_a.headers, "old")
    recent_headers = keyed(tenant_a.headers, "recent")
    assert_original(await client.post("/api/customers", json=old_body, headers=old_headers), 201)
    recent = await client.post("/api/customers", json=recent_body, headers=recent_headers)
    assert_original(recent, 201)

    # Either side of the retention limit, by an hour.
    retention = timedelta(hours=settings.idempotency_retention_hours)
    now = utcnow()
    ages = {"old": retention + timedelta(hours=1), "recent": retention - timedelta(hours=1)}
    async with db.autocommit() as connection:
        for key, age in ages.items():
            await connection.execute(
                update(IdempotencyKey)
                .where(IdempotencyKey.scope == owner_of(tenant_a), IdempotencyKey.key == key)
                .values(created_at=now - age)
            )

    worker = Worker(db, settings, {}, event_handlers)
    try:
        await worker.maintain()
    finally:
        await worker.close()

    assert set(await stored_keys(db, owner_of(tenant_a))) == {"recent"}
    # The purged key is free again, even for another request.
    reused = await client.post("/api/customers", json=customer_body("New"), headers=old_headers)
    assert_original(reused, 201)
    kept = await client.post("/api/customers", json=recent_body, headers=recent_headers)
    assert_replay_of(kept, recent)
    assert await total(client, "/api/customers", tenant_a.headers) == 3


async def _plant_in_flight(
    db: Database, tenant: TenantHandle, key: str, body: bytes, locked_for: timedelta
) -> None:
    """A key row as a holder leaves it mid-request: claimed, no answer stored."""
    now = utcnow()
    async with db.autocommit() as connection:
        await connection.execute(
            insert(IdempotencyKey).values(
                scope=owner_of(tenant),
                key=key,
                fingerprint=fingerprint("POST", "/api/customers", b"", body),
                status=IN_FLIGHT,
                created_at=now - timedelta(minutes=5),
                locked_until=now + locked_for,
            )
        )


async def test_a_dead_holders_key_is_taken_over_by_a_retry(
    client: httpx.AsyncClient, db: Database, tenant_a: TenantHandle
) -> None:
    body = orjson.dumps(customer_body())
    await _plant_in_flight(db, tenant_a, "orphan", body, locked_for=-timedelta(seconds=1))
    headers = keyed({**tenant_a.headers, "Content-Type": "application/json"}, "orphan")

    taken = await client.post("/api/customers", content=body, headers=headers)
    assert_original(taken, 201)
    assert await stored_keys(db, owner_of(tenant_a)) == {"orphan": "completed"}
    assert_replay_of(await client.post("/api/customers", content=body, headers=headers), taken)
    assert await total(client, "/api/customers", tenant_a.headers) == 1


async def test_a_live_holders_key_is_not_taken_over(
    client: httpx.AsyncClient, db: Database, tenant_a: TenantHandle
) -> None:
    body = orjson.dumps(customer_body())
    await _plant_in_flight(db, tenant_a, "held", body, locked_for=timedelta(minutes=1))
    headers = keyed({**tenant_a.headers, "Content-Type": "application/json"}, "held")

    assert_in_flight(await client.post("/api/customers", content=body, headers=headers))
    assert await total(client, "/api/customers", tenant_a.headers) == 0


async def test_an_expired_lock_is_not_taken_over_by_another_request(
    client: httpx.AsyncClient, db: Database, tenant_a: TenantHandle
) -> None:
    planted = orjson.dumps(customer_body("Planted"))
    await _plant_in_flight(db, tenant_a, "orphan", planted, locked_for=-timedelta(seconds=1))

    other = await client.post(
        "/api/customers", json=customer_body("Other"), headers=keyed(tenant_a.headers, "orphan")
    )
    assert_problem(other, 422, "idempotency_key_reused")
    assert await stored_keys(db, owner_of(tenant_a)) == {"orphan": IN_FLIGHT}
    assert await total(client, "/api/customers", tenant_a.headers) == 0
