"""Payments over HTTP: attempts, their refusals, reads and lists, and settling by webhook.

No worker runs behind the ASGI client, so every payment stays pending until a test posts
the gateway's signed webhook itself.
"""

import asyncio
import json
import time
import uuid
from datetime import datetime
from typing import Any

import httpx
import pytest

from tenvoice.gateway.signing import sign
from tests.conftest import WEBHOOK_SECRET, TenantHandle, get_ok, make_customer, make_invoice
from tests.invoices.support import act, act_ok, fetch, invoice_in, item, timeline
from tests.payments.support import pay
from tests.problems import assert_problem, error_fields

# API.md, "Payments": the wire shape of a payment.
PAYMENT_FIELDS = {
    "id",
    "invoiceId",
    "amount",
    "currency",
    "method",
    "status",
    "failureCode",
    "failureMessage",
    "gatewayReference",
    "amountRefunded",
    "attemptedAt",
    "succeededAt",
    "failedAt",
}
Snapshot = tuple[dict[str, Any], list[dict[str, Any]], list[dict[str, Any]]]


@pytest.fixture
async def customer(client: httpx.AsyncClient, tenant_a: TenantHandle) -> dict[str, Any]:
    return await make_customer(client, tenant_a)


async def open_invoice(
    client: httpx.AsyncClient,
    tenant: TenantHandle,
    customer_id: str,
    unit_price: str = "100",
    **fields: Any,
) -> dict[str, Any]:
    invoice = await make_invoice(
        client, tenant, customer_id, items=[item(unit_price)], finalize=True, **fields
    )
    assert invoice["status"] == "open"
    return invoice


def moment(stamp: str) -> datetime:
    # Compared as instants: the strings differ in how many fraction digits they carry.
    return datetime.fromisoformat(stamp)


def created(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 201, response.text
    payment: dict[str, Any] = response.json()
    assert payment["status"] == "pending"
    return payment


async def list_payments(
    client: httpx.AsyncClient, tenant: TenantHandle, params: Any = None
) -> dict[str, Any]:
    return await get_ok(client, tenant, "/api/payments", params)


async def listed_ids(
    client: httpx.AsyncClient, tenant: TenantHandle, params: list[tuple[str, str]] | None = None
) -> list[str]:
    body = await list_payments(client, tenant, [*(params or []), ("pageSize", "100")])
    return [row["id"] for row in body["data"]]


async def get_payment(
    client: httpx.AsyncClient, tenant: TenantHandle, payment_id: str
) -> dict[str, Any]:
    response = await client.get(f"/api/payments/{payment_id}", headers=tenant.headers)
    assert response.status_code == 200, response.text
    payment: dict[str, Any] = response.json()
    return payment


async def snapshot(client: httpx.AsyncClient, tenant: TenantHandle, invoice_id: str) -> Snapshot:
    """Everything a refused attempt must leave as it was: invoice, payments, timeline."""
    invoice = await fetch(client, tenant, invoice_id)
    payments = (await list_payments(client, tenant, {"pageSize": 100}))["data"]
    return invoice, payments, await timeline(client, tenant, invoice_id)


async def refused(
    client: httpx.AsyncClient,
    tenant: TenantHandle,
    invoice_id: str,
    body: dict[str, Any],
    status: int,
    code: str,
) -> dict[str, Any]:
    """POST /api/payments is refused with this problem, and nothing changes."""
    before = await snapshot(client, tenant, invoice_id)
    response = await client.post("/api/payments", json=body, headers=tenant.headers)
    problem = assert_problem(response, status, code)
    assert await snapshot(client, tenant, invoice_id) == before
    return problem


async def gateway_says(
    client: httpx.AsyncClient,
    payment: dict[str, Any],
    kind: str,
    reference: str | None = None,
) -> str:
    """Posts the gateway's signed webhook about `payment`; returns its gatewayReference."""
    reference = reference or f"ch_{uuid.uuid4().hex[:16]}"
    data: dict[str, Any] = {
        "paymentId": payment["id"],
        "gatewayReference": reference,
        "amount": payment["amount"],
        "currency": payment["currency"],
    }
    if kind == "payment.failed":
        data["failureCode"] = "card_declined"
        data["failureMessage"] = "The card was declined."
    body = json.dumps({"type": kind, "data": data}).encode()
    headers = sign(WEBHOOK_SECRET, f"msg_{uuid.uuid4().hex}", int(time.time()), body)
    response = await client.post(
        "/api/webhooks/payments",
        content=body,
        headers={**headers, "content-type": "application/json"},
    )
    assert response.status_code == 200, response.text
    assert response.json() == {"status": "processed"}
    return reference


# -- attempting -----------------------------------------------------------------------


async def test_an_attempt_is_a_pending_payment(
    client: httpx.AsyncClient, tenant_a: TenantHandle, customer: dict[str, Any]
) -> None:
    invoice = await open_invoice(client, tenant_a, customer["id"])
    before = await fetch(client, tenant_a, invoice["id"])
    response = await pay(client, tenant_a, invoice["id"], "40", token="tok_pending")
    payment = created(response)

    assert set(payment) == PAYMENT_FIELDS
    uuid.UUID(payment["id"])
    assert payment["invoiceId"] == invoice["id"]
    assert (payment["amount"], payment["currency"], payment["method"]) == ("40.00", "USD", "card")
    assert payment["amountRefunded"] == "0.00"
    assert payment["attemptedAt"].endswith("Z")
    moment(payment["attemptedAt"])
    for unset in ("failureCode", "failureMessage", "gatewayReference", "succeededAt", "failedAt"):
        assert payment[unset] is None, unset
    # The single-use token goes to the gateway only; it is never part of the payment.
    assert "tok_pending" not in response.text
    assert await get_payment(client, tenant_a, payment["id"]) == payment

    # Pending money is neither paid nor owed any less, and the invoice is not touched.
    assert await fetch(client, tenant_a, invoice["id"]) == before
    assert (before["amountPaid"], before["amountDue"]) == ("0.00", "100.00")

    *earlier, attempted = await timeline(client, tenant_a, invoice["id"])
    assert [e["eventType"] for e in earlier] == ["invoice.created", "invoice.finalized"]
    assert attempted["eventType"] == "payment.attempted"
    assert (attempted["entityType"], attempted["entityId"]) == ("payment", payment["id"])
    assert attempted["actor"] == {"type": "api_key", "id": tenant_a.key_id}
    assert attempted["requestId"] == response.headers["x-request-id"]
    assert attempted["data"]["amount"] == "40.00"
    assert attempted["data"]["method"] == "card"
    assert "tok_pending" not in json.dumps(attempted)


@pytest.mark.parametrize(
    ("currency", "unit_price", "amount", "expected"),
    [
        ("USD", "100", "40", "40.00"),
        ("USD", "100", 40, "40.00"),
        ("USD", "100", 40.5, "40.50"),
        ("USD", "100", "0.01", "0.01"),
        ("JPY", "1500", "1500", "1500"),
        ("JPY", "1500", 700, "700"),
        ("KWD", "1.250", "1.25", "1.250"),
        ("KWD", "1.250", 0.005, "0.005"),
    ],
)
async def test_the_amount_is_written_with_the_currencys_minor_digits(
    client: httpx.AsyncClient,
    tenant_a: TenantHandle,
    customer: dict[str, Any],
    currency: str,
    unit_price: str,
    amount: str | int | float,
    expected: str,
) -> None:
    invoice = await open_invoice(client, tenant_a, customer["id"], unit_price, currency=currency)
    response = await client.post(
        "/api/payments",
        json={"invoiceId": invoice["id"], "amount": amount, "method": "bank_transfer"},
        headers=tenant_a.headers,
    )
    payment = created(response)
    assert (payment["amount"], payment["currency"]) == (expected, currency)
    assert payment["method"] == "bank_transfer"
    assert (await get_payment(client, tenant_a, payment["id"]))["amount"] == expected
    [attempted] = [
        e
        for e in await timeline(client, tenant_a, invoice["id"])
        if e["eventType"] == "payment.attempted"
    ]
    assert attempted["data"]["amount"] == expected


@pytest.mark.parametrize("method", ["card", "bank_transfer", "qris"])
async def test_every_documented_method_is_taken(
    client: httpx.AsyncClient, tenant_a: TenantHandle, customer: dict[str, Any], method: str
) -> None:
    invoice = await open_invoice(client, tenant_a, customer["id"])
    payment = created(await pay(client, tenant_a, invoice["id"], "1", method=method))
    assert payment["method"] == method


# -- refusals -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"amount": "0"}, "amount"),
        ({"amount": 0}, "amount"),
        ({"amount": "-5"}, "amount"),
        ({"amount": -0.01}, "amount"),
        ({"amount": "1.005"}, "amount"),
        ({"amount": "ten"}, "amount"),
        ({"amount": "1e2"}, "amount"),
        ({"amount": True}, "amount"),
        ({"amount": None}, "amount"),
        ({"method": "cash"}, "method"),
        ({"method": "CARD"}, "method"),
        ({"method": None}, "method"),
        ({"invoiceId": "not-a-uuid"}, "invoiceId"),
        ({"invoiceId": 42}, "invoiceId"),
        ({"customerId": "c"}, "customerId"),
        ({"invoice_id": "x"}, "invoice_id"),
        ({"paymentToken": ""}, "paymentToken"),
    ],
)
async def test_invalid_attempts_are_422(
    client: httpx.AsyncClient,
    tenant_a: TenantHandle,
    customer: dict[str, Any],
    change: dict[str, Any],
    field: str,
) -> None:
    invoice = await open_invoice(client, tenant_a, customer["id"])
    body = {"invoiceId": invoice["id"], "amount": "10", "method": "card", **change}
    problem = await refused(client, tenant_a, invoice["id"], body, 422, "validation_failed")
    assert field in error_fields(problem), problem


@pytest.mark.parametrize("missing", ["invoiceId", "amount", "method"])
async def test_a_missing_field_is_422(
    client: httpx.AsyncClient, tenant_a: TenantHandle, customer: dict[str, Any], missing: str
) -> None:
    invoice = await open_invoice(client, tenant_a, customer["id"])
    body = {"invoiceId": invoice["id"], "amount": "10", "method": "card"}
    del body[missing]
    problem = await refused(client, tenant_a, invoice["id"], body, 422, "validation_failed")
    assert missing in error_fields(problem), problem


@pytest.mark.parametrize(
    ("currency", "unit_price", "amount"),
    [("JPY", "1500", "1.5"), ("JPY", "1500", 1.5), ("KWD", "5", "0.0001"), ("USD", "5", 0.001)],
)
async def test_more_decimals_than_the_currency_has_is_422(
    client: httpx.AsyncClient,
    tenant_a: TenantHandle,
    customer: dict[str, Any],
    currency: str,
    unit_price: str,
    amount: str | float,
) -> None:
    invoice = await open_invoice(client, tenant_a, customer["id"], unit_price, currency=currency)
    body = {"invoiceId": invoice["id"], "amount": amount, "method": "card"}
    problem = await refused(client, tenant_a, invoice["id"], body, 422, "validation_failed")
    assert error_fields(problem) == {"amount"}


@pytest.mark.parametrize("status", ["draft", "paid", "void"])
async def test_only_open_or_uncollectible_invoices_take_payments(
    client: httpx.AsyncClient, tenant_a: TenantHandle, customer: dict[str, Any], status: str
) -> None:
    # `paid` here is a zero-total invoice, paid the moment it is finalized.
    invoice = await invoice_in(client, tenant_a, customer["id"], status)
    body = {"invoiceId": invoice["id"], "amount": "1", "method": "card"}
    await refused(client, tenant_a, invoice["id"], body, 409, "invoice_not_payable")


async def test_an_uncollectible_invoice_takes_payments(
    client: httpx.AsyncClient, tenant_a: TenantHandle, customer: dict[str, Any]
) -> None:
    invoice = await open_invoice(client, tenant_a, customer["id"])
    await act_ok(client, tenant_a, invoice["id"], "mark-uncollectible")
    first = created(await pay(client, tenant_a, invoice["id"], "30"))
    second = created(await pay(client, tenant_a, invoice["id"], "70"))
    body = {"invoiceId": invoice["id"], "amount": "0.01", "method": "card"}
    await refused(client, tenant_a, invoice["id"], body, 409, "amount_exceeds_balance")

    await gateway_says(client, first, "payment.succeeded")
    partly = await fetch(client, tenant_a, invoice["id"])
    assert (partly["status"], partly["amountPaid"], partly["amountDue"]) == (
        "uncollectible",
        "30.00",
        "70.00",
    )
    await gateway_says(client, second, "payment.succeeded")
    settled = await fetch(client, tenant_a, invoice["id"])
    assert (settled["status"], settled["amountPaid"], settled["amountDue"]) == (
        "paid",
        "100.00",
        "0.00",
    )
    assert settled["paidAt"] is not None


async def test_more_than_is_due_is_refused(
    client: httpx.AsyncClient, tenant_a: TenantHandle, customer: dict[str, Any]
) -> None:
    invoice = await open_invoice(client, tenant_a, customer["id"])
    body = {"invoiceId": invoice["id"], "amount": "100.01", "method": "card"}
    await refused(client, tenant_a, invoice["id"], body, 409, "amount_exceeds_balance")
    created(await pay(client, tenant_a, invoice["id"], "100.00"))


async def test_pending_payments_count_against_the_balance(
    client: httpx.AsyncClient, tenant_a: TenantHandle, customer: dict[str, Any]
) -> None:
    invoice = await open_invoice(client, tenant_a, customer["id"])
    created(await pay(client, tenant_a, invoice["id"], "60"))
    body = {"invoiceId": invoice["id"], "amount": "50", "method": "card"}
    problem = await refused(client, tenant_a, invoice["id"], body, 409, "amount_exceeds_balance")
    assert "40.00" in problem["detail"]
    created(await pay(client, tenant_a, invoice["id"], "40"))
    body["amount"] = "0.01"
    await refused(client, tenant_a, invoice["id"], body, 409, "amount_exceeds_balance")
    assert len(await listed_ids(client, tenant_a, [("invoiceId", invoice["id"])])) == 2


async def test_concurrent_attempts_never_overpay(
    client: httpx.AsyncClient, tenant_a: TenantHandle, customer: dict[str, Any]
) -> None:
    invoice = await open_invoice(client, tenant_a, customer["id"])
    responses = await asyncio.gather(
        *(pay(client, tenant_a, invoice["id"], "30") for _ in range(5))
    )
    statuses = sorted(response.status_code for response in responses)
    assert statuses == [201, 201, 201, 409, 409], [r.text for r in responses]
    for response in responses:
        if response.status_code == 409:
            assert_problem(response, 409, "amount_exceeds_balance")
    assert len(await listed_ids(client, tenant_a, [("invoiceId", invoice["id"])])) == 3


async def test_an_unknown_invoice_is_404(
    client: httpx.AsyncClient, tenant_a: TenantHandle, customer: dict[str, Any]
) -> None:
    mine = await open_invoice(client, tenant_a, customer["id"])
    body = {"invoiceId": str(uuid.uuid4()), "amount": "1", "method": "card"}
    await refused(client, tenant_a, mine["id"], body, 404, "invoice_not_found")


async def test_another_tenants_invoice_is_404(
    client: httpx.AsyncClient,
    tenant_a: TenantHandle,
    tenant_b: TenantHandle,
    customer: dict[str, Any],
) -> None:
    mine = await open_invoice(client, tenant_a, customer["id"])
    theirs_customer = await make_customer(client, tenant_b, "Globex Buyer")
    theirs = await open_invoice(client, tenant_b, theirs_customer["id"])
    their_state = await snapshot(client, tenant_b, theirs["id"])
    body = {"invoiceId": theirs["id"], "amount": "1", "method": "card"}
    problem = await refused(client, tenant_a, mine["id"], body, 404, "invoice_not_found")
    assert theirs["number"] not in json.dumps(problem)
    assert await snapshot(client, tenant_b, theirs["id"]) == their_state
    assert their_state[1] == []


# -- void and mark-uncollectible with a payment pending -------------------------------


async def test_void_waits_for_pending_payments(
    client: httpx.AsyncClient, tenant_a: TenantHandle, customer: dict[str, Any]
) -> None:
    invoice = await open_invoice(client, tenant_a, customer["id"])
    payment = created(await pay(client, tenant_a, invoice["id"], "25", token="tok_pending"))
    before = await snapshot(client, tenant_a, invoice["id"])

    assert_problem(
        await act(client, tenant_a, invoice["id"], "void"), 409, "invoice_has_pending_payments"
    )
    assert await snapshot(client, tenant_a, invoice["id"]) == before
    assert before[0]["status"] == "open"

    uncollectible = await act_ok(client, tenant_a, invoice["id"], "mark-uncollectible")
    assert uncollectible["status"] == "uncollectible"
    assert_problem(
        await act(client, tenant_a, invoice["id"], "void"), 409, "invoice_has_pending_payments"
    )
    assert (await fetch(client, tenant_a, invoice["id"]))["status"] == "uncollectible"

    # Once the gateway has answered, nothing is in flight and the invoice can be voided.
    await gateway_says(client, payment, "payment.failed")
    voided = await act_ok(client, tenant_a, invoice["id"], "void")
    assert (voided["status"], voided["amountPaid"], voided["amountDue"]) == (
        "void",
        "0.00",
        "0.00",
    )


# -- reading --------------------------------------------------------------------------


async def test_get_a_payment(
    client: httpx.AsyncClient,
    tenant_a: TenantHandle,
    tenant_b: TenantHandle,
    admin: dict[str, str],
    customer: dict[str, Any],
) -> None:
    invoice = await open_invoice(client, tenant_a, customer["id"])
    payment = created(await pay(client, tenant_a, invoice["id"], "12.34"))
    assert await get_payment(client, tenant_a, payment["id"]) == payment
    as_admin = await client.get(
        f"/api/payments/{payment['id']}", headers={**admin, "X-Tenant-Id": tenant_a.id}
    )
    assert as_admin.status_code == 200, as_admin.text
    assert as_admin.json() == payment

    for unknown in (str(uuid.uuid4()), invoice["id"]):
        response = await client.get(f"/api/payments/{unknown}", headers=tenant_a.headers)
        assert_problem(response, 404, "payment_not_found")
    theirs = await client.get(f"/api/payments/{payment['id']}", headers=tenant_b.headers)
    assert_problem(theirs, 404, "payment_not_found")
    assert "12.34" not in theirs.text
    as_b = await client.get(
        f"/api/payments/{payment['id']}", headers={**admin, "X-Tenant-Id": tenant_b.id}
    )
    assert_problem(as_b, 404, "payment_not_found")
    # A malformed id names nothing, like an unknown one; the house code for that is the
    # generic not_found (as for customers and invoices).
    for malformed in ("not-a-uuid", "42", payment["id"] + "0"):
        response = await client.get(f"/api/payments/{malformed}", headers=tenant_a.headers)
        assert_problem(response, 404, "not_found")


async def test_the_list_is_newest_first_and_filters_by_invoice(
    client: httpx.AsyncClient, tenant_a: TenantHandle, customer: dict[str, Any]
) -> None:
    first = await open_invoice(client, tenant_a, customer["id"])
    second = await open_invoice(client, tenant_a, customer["id"])
    made = [
        created(await pay(client, tenant_a, invoice["id"], amount))
        for invoice, amount in [(first, "1"), (second, "2"), (first, "3"), (second, "4")]
    ]
    body = await list_payments(client, tenant_a)
    assert body["data"] == made[::-1]
    assert body["pagination"] == {"page": 1, "pageSize": 10, "hasMore": False}

    assert await listed_ids(client, tenant_a, [("invoiceId", first["id"])]) == [
        made[2]["id"],
        made[0]["id"],
    ]
    assert await listed_ids(client, tenant_a, [("invoiceId", second["id"])]) == [
        made[3]["id"],
        made[1]["id"],
    ]
    assert await listed_ids(client, tenant_a, [("invoiceId", str(uuid.uuid4()))]) == []
    bad = await client.get("/api/payments", params={"invoiceId": "nope"}, headers=tenant_a.headers)
    assert "invoiceId" in error_fields(assert_problem(bad, 422, "validation_failed"))


async def test_offset_pages_walk_every_payment_once(
    client: httpx.AsyncClient, tenant_a: TenantHandle, customer: dict[str, Any]
) -> None:
    invoice = await open_invoice(client, tenant_a, customer["id"])
    made = [created(await pay(client, tenant_a, invoice["id"], "1"))["id"] for _ in range(5)]
    seen: list[str] = []
    for page, has_more in [(1, True), (2, True), (3, False)]:
        body = await list_payments(
            client, tenant_a, {"page": page, "pageSize": 2, "includeTotal": "true"}
        )
        assert body["pagination"] == {
            "page": page,
            "pageSize": 2,
            "hasMore": has_more,
            "totalCount": 5,
        }
        seen += [row["id"] for row in body["data"]]
    assert seen == made[::-1]
    beyond = await list_payments(client, tenant_a, {"page": 4, "pageSize": 2})
    assert beyond["data"] == []
    assert beyond["pagination"]["hasMore"] is False
    for bad in ({"pageSize": 0}, {"pageSize": 101}, {"page": 0}):
        response = await client.get("/api/payments", params=bad, headers=tenant_a.headers)
        assert_problem(response, 422, "validation_failed")


async def test_cursor_pages_walk_every_payment_once(
    client: httpx.AsyncClient, tenant_a: TenantHandle, customer: dict[str, Any]
) -> None:
    invoice = await open_invoice(client, tenant_a, customer["id"])
    made = [created(await pay(client, tenant_a, invoice["id"], "1"))["id"] for _ in range(5)]
    seen: list[str] = []
    params: dict[str, Any] = {"limit": 2}
    pages = 0
    while True:
        body = await list_payments(client, tenant_a, params)
        pages += 1
        pagination = body["pagination"]
        assert set(pagination) == {"limit", "hasMore", "nextCursor"}
        assert pagination["limit"] == 2
        seen += [row["id"] for row in body["data"]]
        if not pagination["hasMore"]:
            assert pagination["nextCursor"] is None
            break
        if pages == 1:
            # A payment made mid-walk is newer than the cursor: it neither shows up later
            # in this walk nor pushes a row already seen onto the next page.
            created(await pay(client, tenant_a, invoice["id"], "1"))
        params = {"limit": 2, "cursor": pagination["nextCursor"]}
    assert pages == 3
    assert seen == made[::-1]
    assert len(set(seen)) == len(seen)

    # Filters hold across cursor pages too.
    on_invoice = await listed_ids(client, tenant_a, [("invoiceId", invoice["id"])])
    assert on_invoice[1:] == made[::-1]
    other = await open_invoice(client, tenant_a, customer["id"])
    created(await pay(client, tenant_a, other["id"], "1"))
    filtered = await list_payments(client, tenant_a, {"limit": 4, "invoiceId": invoice["id"]})
    rest = await list_payments(
        client,
        tenant_a,
        {
            "limit": 4,
            "invoiceId": invoice["id"],
            "cursor": filtered["pagination"]["nextCursor"],
        },
    )
    assert [r["id"] for r in filtered["data"] + rest["data"]] == on_invoice

    both = await client.get(
        "/api/payments", params={"page": 1, "cursor": "x"}, headers=tenant_a.headers
    )
    assert_problem(both, 422, "validation_failed")
    forged = await client.get(
        "/api/payments", params={"cursor": "not-a-cursor"}, headers=tenant_a.headers
    )
    assert "cursor" in error_fields(assert_problem(forged, 422, "validation_failed"))


async def test_tenants_see_only_their_own_payments(
    client: httpx.AsyncClient,
    tenant_a: TenantHandle,
    tenant_b: TenantHandle,
    customer: dict[str, Any],
) -> None:
    invoice = await open_invoice(client, tenant_a, customer["id"])
    mine = created(await pay(client, tenant_a, invoice["id"], "5"))
    theirs_customer = await make_customer(client, tenant_b)
    theirs_invoice = await open_invoice(client, tenant_b, theirs_customer["id"])
    theirs = created(await pay(client, tenant_b, theirs_invoice["id"], "6"))

    for tenant, own in [(tenant_a, mine), (tenant_b, theirs)]:
        body = await list_payments(client, tenant, {"includeTotal": "true"})
        assert body["data"] == [own]
        assert body["pagination"]["totalCount"] == 1
        cursor = await list_payments(client, tenant, {"limit": 100})
        assert cursor["data"] == [own]
    for params in (
        {"invoiceId": invoice["id"]},
        {"status": "pending"},
        {"status": "pending,succeeded,failed", "limit": 100},
    ):
        body = await list_payments(client, tenant_b, params)
        assert mine["id"] not in {row["id"] for row in body["data"]}, params
    assert await listed_ids(client, tenant_b, [("invoiceId", invoice["id"])]) == []


# -- settling through the gateway's webhook -------------------------------------------


async def test_payments_settle_the_invoice_through_the_gateway(
    client: httpx.AsyncClient, tenant_a: TenantHandle, customer: dict[str, Any]
) -> None:
    invoice = await open_invoice(client, tenant_a, customer["id"])
    part = created(await pay(client, tenant_a, invoice["id"], "30"))
    declined = created(await pay(client, tenant_a, invoice["id"], "70", method="qris"))
    full = {"invoiceId": invoice["id"], "amount": "0.01", "method": "card"}
    await refused(client, tenant_a, invoice["id"], full, 409, "amount_exceeds_balance")

    reference = await gateway_says(client, part, "payment.succeeded")
    succeeded = await get_payment(client, tenant_a, part["id"])
    assert succeeded["status"] == "succeeded"
    assert succeeded["gatewayReference"] == reference
    assert succeeded["succeededAt"].endswith("Z")
    assert moment(succeeded["succeededAt"]) >= moment(succeeded["attemptedAt"])
    assert (succeeded["failedAt"], succeeded["failureCode"], succeeded["failureMessage"]) == (
        None,
        None,
        None,
    )
    assert {k: v for k, v in succeeded.items() if k not in ("status", "gatewayReference")} == {
        **{k: v for k, v in part.items() if k not in ("status", "gatewayReference")},
        "succeededAt": succeeded["succeededAt"],
    }
    partly = await fetch(client, tenant_a, invoice["id"])
    assert (partly["status"], partly["amountPaid"], partly["amountDue"]) == (
        "open",
        "30.00",
        "70.00",
    )
    assert partly["paidAt"] is None

    await gateway_says(client, declined, "payment.failed", reference="ch_declined")
    failed = await get_payment(client, tenant_a, declined["id"])
    assert failed["status"] == "failed"
    assert (failed["failureCode"], failed["failureMessage"]) == (
        "card_declined",
        "The card was declined.",
    )
    assert failed["failedAt"].endswith("Z")
    assert failed["succeededAt"] is None
    assert failed["gatewayReference"] == "ch_declined"
    after_failure = await fetch(client, tenant_a, invoice["id"])
    assert (after_failure["status"], after_failure["amountPaid"], after_failure["amountDue"]) == (
        "open",
        "30.00",
        "70.00",
    )

    # The failed 70 is owed again, and no more than that.
    over = {"invoiceId": invoice["id"], "amount": "70.01", "method": "card"}
    await refused(client, tenant_a, invoice["id"], over, 409, "amount_exceeds_balance")
    last = created(await pay(client, tenant_a, invoice["id"], "70"))
    await gateway_says(client, last, "payment.succeeded")
    paid = await fetch(client, tenant_a, invoice["id"])
    assert (paid["status"], paid["amountPaid"], paid["amountDue"]) == ("paid", "100.00", "0.00")
    assert paid["paidAt"] is not None
    assert paid["updatedAt"] == paid["paidAt"]

    events = await timeline(client, tenant_a, invoice["id"])
    assert [(e["eventType"], e["entityId"]) for e in events] == [
        ("invoice.created", invoice["id"]),
        ("invoice.finalized", invoice["id"]),
        ("payment.attempted", part["id"]),
        ("payment.attempted", declined["id"]),
        ("payment.succeeded", part["id"]),
        ("payment.failed", declined["id"]),
        ("payment.attempted", last["id"]),
        ("payment.succeeded", last["id"]),
        ("invoice.paid", invoice["id"]),
    ]
    for event in events[4:6] + events[7:]:
        assert event["actor"] == {"type": "gateway", "id": None}, event
    assert events[5]["data"]["failureCode"] == "card_declined"
    assert events[-1]["data"]["amountPaid"] == "100.00"
    assert moment(events[-1]["occurredAt"]) >= moment(events[-2]["occurredAt"])

    # A paid invoice takes nothing more.
    await refused(client, tenant_a, invoice["id"], full, 409, "invoice_not_payable")

    by_status = {
        status: set(await listed_ids(client, tenant_a, [("status", status)]))
        for status in ("pending", "succeeded", "failed")
    }
    assert by_status == {
        "pending": set(),
        "succeeded": {part["id"], last["id"]},
        "failed": {declined["id"]},
    }


async def test_the_status_filter(
    client: httpx.AsyncClient, tenant_a: TenantHandle, customer: dict[str, Any]
) -> None:
    invoice = await open_invoice(client, tenant_a, customer["id"])
    won, lost, waiting = [
        created(await pay(client, tenant_a, invoice["id"], amount))["id"]
        for amount in ("10", "20", "30")
    ]
    await gateway_says(client, await get_payment(client, tenant_a, won), "payment.succeeded")
    await gateway_says(client, await get_payment(client, tenant_a, lost), "payment.failed")

    cases: list[tuple[list[tuple[str, str]], list[str]]] = [
        ([], [waiting, lost, won]),
        ([("status", "pending")], [waiting]),
        ([("status", "succeeded")], [won]),
        ([("status", "failed")], [lost]),
        ([("status", "pending"), ("status", "failed")], [waiting, lost]),
        ([("status", "failed,succeeded")], [lost, won]),
        ([("status", "succeeded, pending")], [waiting, won]),
        ([("status", "failed"), ("status", "failed")], [lost]),
        ([("status", "failed"), ("invoiceId", invoice["id"])], [lost]),
        ([("status", "failed"), ("invoiceId", str(uuid.uuid4()))], []),
    ]
    for params, expected in cases:
        assert await listed_ids(client, tenant_a, params) == expected, params
    counted = await list_payments(
        client, tenant_a, [("status", "pending,failed"), ("includeTotal", "true")]
    )
    assert counted["pagination"]["totalCount"] == 2

    for bad in ("refunded", "PENDING", "pending,bogus", ""):
        response = await client.get(
            "/api/payments", params={"status": bad}, headers=tenant_a.headers
        )
        problem = assert_problem(response, 422, "validation_failed")
        assert error_fields(problem) == {"status"}, bad


async def test_the_admin_acting_as_a_tenant_pays_as_itself(
    client: httpx.AsyncClient,
    tenant_a: TenantHandle,
    admin: dict[str, str],
    customer: dict[str, Any],
) -> None:
    invoice = await open_invoice(client, tenant_a, customer["id"])
    response = await client.post(
        "/api/payments",
        json={"invoiceId": invoice["id"], "amount": "5", "method": "card"},
        headers={**admin, "X-Tenant-Id": tenant_a.id},
    )
    payment = created(response)
    assert (await listed_ids(client, tenant_a)) == [payment["id"]]
    attempted = (await timeline(client, tenant_a, invoice["id"]))[-1]
    assert (attempted["eventType"], attempted["entityId"]) == ("payment.attempted", payment["id"])
    assert attempted["actor"] == {"type": "admin", "id": None}
    without_tenant = await client.post(
        "/api/payments",
        json={"invoiceId": invoice["id"], "amount": "5", "method": "card"},
        headers=admin,
    )
    assert_problem(without_tenant, 400, "tenant_required")
    assert (await listed_ids(client, tenant_a)) == [payment["id"]]


async def test_a_retried_attempt_reserves_the_balance_once(
    client: httpx.AsyncClient, tenant_a: TenantHandle, customer: dict[str, Any]
) -> None:
    invoice = await open_invoice(client, tenant_a, customer["id"])
    body = {"invoiceId": invoice["id"], "amount": "60", "method": "card"}
    headers = {**tenant_a.headers, "Idempotency-Key": f"pay-{uuid.uuid4()}"}
    first = await client.post("/api/payments", json=body, headers=headers)
    payment = created(first)
    again = await client.post("/api/payments", json=body, headers=headers)
    assert again.status_code == 201, again.text
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json() == payment
    assert await listed_ids(client, tenant_a) == [payment["id"]]
    # Had the retry reserved 60 more, the remaining 40 would be refused.
    created(await pay(client, tenant_a, invoice["id"], "40"))
