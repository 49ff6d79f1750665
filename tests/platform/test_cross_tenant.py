"""Every route that takes an object id answers 404 for another tenant's object, and changes
nothing. The routes come from the app itself, so a route added later is walked too."""

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import iter_route_contexts

from tests.conftest import TenantHandle, make_customer, make_invoice
from tests.gateway.test_webhook_endpoint import deliver, pending_payment
from tests.gateway.test_webhook_endpoint import event as gateway_event
from tests.payments.support import pay
from tests.problems import assert_problem
from tests.webhooks.test_endpoints import PUBLIC_URL, make_endpoint

ID_PARAMS = (
    "customer_id",
    "invoice_id",
    "payment_id",
    "endpoint_id",
    "event_id",
    "delivery_id",
    "credit_note_id",
    "refund_id",
)
KNOWN_ROUTES = {
    ("GET", "/api/customers/{customer_id}"),
    ("PATCH", "/api/customers/{customer_id}"),
    ("DELETE", "/api/customers/{customer_id}"),
    ("GET", "/api/invoices/{invoice_id}"),
    ("PATCH", "/api/invoices/{invoice_id}"),
    ("DELETE", "/api/invoices/{invoice_id}"),
    ("POST", "/api/invoices/{invoice_id}/finalize"),
    ("POST", "/api/invoices/{invoice_id}/send"),
    ("POST", "/api/invoices/{invoice_id}/void"),
    ("POST", "/api/invoices/{invoice_id}/mark-uncollectible"),
    ("GET", "/api/invoices/{invoice_id}/timeline"),
    ("GET", "/api/payments/{payment_id}"),
    ("GET", "/api/webhook-endpoints/{endpoint_id}"),
    ("PATCH", "/api/webhook-endpoints/{endpoint_id}"),
    ("DELETE", "/api/webhook-endpoints/{endpoint_id}"),
    ("POST", "/api/webhook-endpoints/{endpoint_id}/rotate-secret"),
    ("POST", "/api/webhook-endpoints/{endpoint_id}/test"),
    ("GET", "/api/events/{event_id}"),
    ("GET", "/api/webhook-endpoints/{endpoint_id}/deliveries"),
    ("GET", "/api/webhook-endpoints/{endpoint_id}/deliveries/{delivery_id}"),
    ("POST", "/api/webhook-endpoints/{endpoint_id}/deliveries/{delivery_id}/retry"),
    ("GET", "/api/credit-notes/{credit_note_id}"),
    ("POST", "/api/credit-notes/{credit_note_id}/void"),
    ("GET", "/api/credit-notes/{credit_note_id}/pdf"),
    ("GET", "/api/refunds/{refund_id}"),
    ("GET", "/api/customers/{customer_id}/balance-transactions"),
    ("POST", "/api/customers/{customer_id}/balance-transactions"),
}
# A body valid enough to get past validation, so the answer is about the id. A new route
# that needs a body gets one here; without it the walk fails with a 422 and says where.
BODIES: dict[tuple[str, str], dict[str, Any]] = {
    ("PATCH", "/api/customers/{customer_id}"): {"name": "Hijacked", "email": "x@example.com"},
    ("PATCH", "/api/invoices/{invoice_id}"): {"memo": "hijacked", "metadata": {"owned": "yes"}},
    ("PATCH", "/api/webhook-endpoints/{endpoint_id}"): {
        "url": PUBLIC_URL + "/hijacked",
        "enabledEvents": ["*"],
        "description": "hijacked",
        "status": "disabled",
    },
    ("POST", "/api/webhook-endpoints/{endpoint_id}/rotate-secret"): {"expireCurrentInHours": 0},
    ("POST", "/api/customers/{customer_id}/balance-transactions"): {
        "currency": "USD",
        "amount": "5",
    },
}
# Routes that take another tenant's object in the body rather than the path.
BODY_ROUTES: list[tuple[str, Callable[["Victim"], dict[str, Any]]]] = [
    (
        "/api/credit-notes",
        lambda v: {"invoiceId": v.open["id"], "lines": [{"description": "x", "amount": "1"}]},
    ),
    (
        "/api/credit-notes/preview",
        lambda v: {"invoiceId": v.open["id"], "lines": [{"description": "x", "amount": "1"}]},
    ),
    ("/api/refunds", lambda v: {"paymentId": v.paid_payment["id"]}),
]


@dataclass(frozen=True)
class Victim:
    customer: dict[str, Any]
    draft: dict[str, Any]
    open: dict[str, Any]
    payment: dict[str, Any]
    endpoint: dict[str, Any]
    event: dict[str, Any]
    # The endpoint's delivery of B's test event.
    delivery_id: str
    # A payment the gateway took, a credit note on its invoice refunding part of it (the
    # refund stays pending: no worker runs), and credit on the customer's balance.
    paid_payment: dict[str, Any]
    credit_note: dict[str, Any]
    refund_id: str


def id_routes(app: FastAPI) -> list[tuple[str, str]]:
    routes = []
    # app.routes nests each included router; iter_route_contexts flattens them with the
    # path and methods each route answers on.
    for route in iter_route_contexts(app.routes):
        path, methods = route.path, route.methods
        if path is None or methods is None:
            continue
        # Written as the OpenAPI document names it: `{credit_note_id:uuid}` is `{credit_note_id}`.
        path = re.sub(r"{(\w+):\w+}", r"{\1}", path)
        if any(f"{{{param}}}" in path for param in ID_PARAMS):
            routes += [(method, path) for method in sorted(methods) if method != "HEAD"]
    return routes


def fill(path: str, ids: dict[str, str]) -> str:
    params = re.findall(r"{(\w+)}", path)
    unknown = [param for param in params if param not in ids]
    if unknown:
        pytest.fail(f"{path}: teach the cross-tenant walk an id for {unknown}")
    return re.sub(r"{(\w+)}", lambda m: ids[m.group(1)], path)


async def snapshot(client: httpx.AsyncClient, tenant: TenantHandle, victim: Victim) -> Any:
    paths = [
        f"/api/customers/{victim.customer['id']}",
        f"/api/invoices/{victim.draft['id']}",
        f"/api/invoices/{victim.open['id']}",
        f"/api/invoices/{victim.draft['id']}/timeline",
        f"/api/invoices/{victim.open['id']}/timeline",
        f"/api/payments/{victim.payment['id']}",
        f"/api/webhook-endpoints/{victim.endpoint['id']}",
        f"/api/events/{victim.event['id']}",
        f"/api/webhook-endpoints/{victim.endpoint['id']}/deliveries/{victim.delivery_id}",
        f"/api/webhook-endpoints/{victim.endpoint['id']}/deliveries",
        f"/api/credit-notes/{victim.credit_note['id']}",
        f"/api/refunds/{victim.refund_id}",
        f"/api/customers/{victim.customer['id']}/balance-transactions",
        f"/api/payments/{victim.paid_payment['id']}",
        "/api/credit-notes",
        "/api/refunds",
        "/api/customers",
        "/api/invoices",
        "/api/payments",
        "/api/webhook-endpoints",
        "/api/events",
    ]
    taken = []
    for path in paths:
        response = await client.get(path, headers=tenant.headers)
        assert response.status_code == 200, response.text
        taken.append(response.json())
    return taken


@pytest.fixture
async def victim(client: httpx.AsyncClient, tenant_b: TenantHandle) -> Victim:
    customer = await make_customer(client, tenant_b, "Globex Secret Customer")
    draft = await make_invoice(client, tenant_b, customer["id"], memo="draft of b")
    opened = await make_invoice(client, tenant_b, customer["id"], finalize=True)
    assert (draft["status"], opened["status"]) == ("draft", "open")
    # Pending for good (no worker runs here): B's open invoice is partly paid for.
    response = await pay(client, tenant_b, opened["id"], "100", token="tok_pending")
    assert response.status_code == 201, response.text
    endpoint = await make_endpoint(client, tenant_b, enabledEvents=["invoice.*"])
    tested = await client.post(
        f"/api/webhook-endpoints/{endpoint['id']}/test", headers=tenant_b.headers
    )
    assert tested.status_code == 202, tested.text
    events = await client.get(
        "/api/events", params={"type": "customer.created"}, headers=tenant_b.headers
    )
    [event] = events.json()["data"]
    delivery_id = tested.json()["deliveryId"]
    pending = await pending_payment(client, tenant_b)
    acked = await deliver(client, gateway_event(pending))
    assert acked.status_code == 200, acked.text
    paid = await client.get(f"/api/invoices/{pending.invoice_id}", headers=tenant_b.headers)
    note = await client.post(
        "/api/credit-notes",
        json={
            "invoiceId": pending.invoice_id,
            "lines": [{"invoiceItemId": paid.json()["items"][0]["id"], "quantity": "1"}],
            "refundAmount": "50.00",
            "creditAmount": "50.00",
        },
        headers=tenant_b.headers,
    )
    assert note.status_code == 201, note.text
    payment = await client.get(f"/api/payments/{pending.payment_id}", headers=tenant_b.headers)
    return Victim(
        customer,
        draft,
        opened,
        response.json(),
        endpoint,
        event,
        delivery_id,
        payment.json(),
        note.json(),
        note.json()["refundIds"][0],
    )


@pytest.mark.parametrize("caller", ["api_key", "admin"])
async def test_every_id_route_is_404_across_tenants(
    app: FastAPI,
    client: httpx.AsyncClient,
    admin: dict[str, str],
    tenant_a: TenantHandle,
    tenant_b: TenantHandle,
    victim: Victim,
    caller: str,
) -> None:
    headers = tenant_a.headers if caller == "api_key" else {**admin, "X-Tenant-Id": tenant_a.id}
    # Tenant A owns objects of its own, so a leak could not hide behind an empty tenant.
    mine = await make_customer(client, tenant_a)
    my_invoice = await make_invoice(client, tenant_a, mine["id"], finalize=True)
    assert (await pay(client, tenant_a, my_invoice["id"], "1")).status_code == 201
    before = await snapshot(client, tenant_b, victim)

    routes = id_routes(app)
    assert set(routes) >= KNOWN_ROUTES, KNOWN_ROUTES - set(routes)
    theirs = {
        "customer_id": victim.customer["id"],
        "payment_id": victim.payment["id"],
        "endpoint_id": victim.endpoint["id"],
        "event_id": victim.event["id"],
        "delivery_id": victim.delivery_id,
        "credit_note_id": victim.credit_note["id"],
        "refund_id": victim.refund_id,
    }
    id_sets = [
        {**theirs, "invoice_id": victim.draft["id"]},
        {**theirs, "invoice_id": victim.open["id"]},
    ]
    wrong: list[str] = []
    walked = 0
    for method, template in routes:
        for ids in id_sets:
            body = BODIES.get((method, template))
            url = fill(template, ids)
            response = await client.request(method, url, json=body, headers=headers)
            walked += 1
            if response.status_code != 404:
                wrong.append(f"{method} {url} -> {response.status_code} {response.text[:200]}")
                continue
            problem = assert_problem(response, 404, response.json()["code"])
            assert problem["code"] in (
                "customer_not_found",
                "invoice_not_found",
                "payment_not_found",
                "webhook_endpoint_not_found",
                "event_not_found",
                "webhook_delivery_not_found",
                "credit_note_not_found",
                "refund_not_found",
                "not_found",
            )
            assert victim.customer["name"] not in response.text
    for path, body_of in BODY_ROUTES:
        response = await client.post(path, json=body_of(victim), headers=headers)
        walked += 1
        if response.status_code != 404:
            wrong.append(f"POST {path} -> {response.status_code} {response.text[:200]}")
    assert not wrong, "\n".join(wrong)
    assert walked >= 2 * len(KNOWN_ROUTES)

    assert await snapshot(client, tenant_b, victim) == before


async def test_lists_never_show_another_tenants_rows(
    client: httpx.AsyncClient, tenant_a: TenantHandle, victim: Victim
) -> None:
    mine = await make_customer(client, tenant_a, "Acme Own Customer")
    my_invoice = await make_invoice(client, tenant_a, mine["id"], finalize=True)
    my_payment = await pay(client, tenant_a, my_invoice["id"], "1")
    assert my_payment.status_code == 201, my_payment.text

    customers = await client.get(
        "/api/customers", params={"includeTotal": "true"}, headers=tenant_a.headers
    )
    assert [c["id"] for c in customers.json()["data"]] == [mine["id"]]
    assert customers.json()["pagination"]["totalCount"] == 1

    invoices = await client.get(
        "/api/invoices", params={"includeTotal": "true"}, headers=tenant_a.headers
    )
    assert [i["id"] for i in invoices.json()["data"]] == [my_invoice["id"]]
    assert invoices.json()["pagination"]["totalCount"] == 1

    payments = await client.get(
        "/api/payments", params={"includeTotal": "true"}, headers=tenant_a.headers
    )
    assert [p["id"] for p in payments.json()["data"]] == [my_payment.json()["id"]]
    assert payments.json()["pagination"]["totalCount"] == 1

    probes: list[tuple[str, dict[str, Any]]] = [
        ("/api/customers", {"search": "Globex"}),
        ("/api/customers", {"limit": 100}),
        ("/api/invoices", {"customerId": victim.customer["id"]}),
        ("/api/invoices", {"search": "Globex"}),
        ("/api/invoices", {"search": "GLX"}),
        ("/api/invoices", {"status": ["draft", "open"], "limit": 100}),
        ("/api/invoices", {"currency": "EUR"}),
        ("/api/payments", {"invoiceId": victim.open["id"]}),
        ("/api/payments", {"status": "pending", "limit": 100}),
        ("/api/webhook-endpoints", {"limit": 100}),
        ("/api/webhook-endpoints", {"includeTotal": "true"}),
        ("/api/credit-notes", {"invoiceId": victim.credit_note["invoiceId"]}),
        ("/api/credit-notes", {"customerId": victim.customer["id"], "limit": 100}),
        ("/api/refunds", {"paymentId": victim.paid_payment["id"]}),
        ("/api/refunds", {"status": "pending", "includeTotal": "true"}),
    ]
    for path, params in probes:
        response = await client.get(path, params=params, headers=tenant_a.headers)
        assert response.status_code == 200, response.text
        ids = {row["id"] for row in response.json()["data"]}
        theirs = {victim.customer["id"], victim.draft["id"], victim.open["id"]}
        theirs |= {victim.credit_note["id"], victim.refund_id}
        assert not ids & {*theirs, victim.payment["id"], victim.endpoint["id"]}, params
        assert "Globex" not in response.text

    mine_ids = {mine["id"], my_invoice["id"], my_payment.json()["id"]}
    event_probes: list[dict[str, Any]] = [
        {"includeTotal": "true", "limit": 100},
        {"entityId": victim.customer["id"]},
        {"entityId": victim.open["id"]},
        {"entityId": victim.payment["id"]},
        {"type": ["customer.*", "invoice.*", "payment.*"], "limit": 100},
        {"entityType": "invoice", "pageSize": 100},
        {"occurredFrom": "2000-01-01T00:00:00Z", "limit": 100},
    ]
    for params in event_probes:
        response = await client.get("/api/events", params=params, headers=tenant_a.headers)
        assert response.status_code == 200, response.text
        events = response.json()["data"]
        assert {event["entityId"] for event in events} <= mine_ids, params
        assert victim.event["id"] not in {event["id"] for event in events}
        assert "Globex" not in response.text
    counted = await client.get(
        "/api/events", params={"includeTotal": "true"}, headers=tenant_a.headers
    )
    assert counted.json()["pagination"]["totalCount"] == len(counted.json()["data"]) >= 4


async def test_cannot_invoice_another_tenants_customer(
    client: httpx.AsyncClient, tenant_a: TenantHandle, tenant_b: TenantHandle, victim: Victim
) -> None:
    items = [{"description": "x", "quantity": 1, "unitPrice": "10"}]
    for finalize in (False, True):
        response = await client.post(
            "/api/invoices",
            json={"customerId": victim.customer["id"], "items": items, "finalize": finalize},
            headers=tenant_a.headers,
        )
        assert_problem(response, 404, "customer_not_found")

    mine = await make_customer(client, tenant_a)
    draft = await make_invoice(client, tenant_a, mine["id"])
    moved = await client.patch(
        f"/api/invoices/{draft['id']}",
        json={"customerId": victim.customer["id"]},
        headers=tenant_a.headers,
    )
    assert_problem(moved, 404, "customer_not_found")

    listed = await client.get("/api/invoices", headers=tenant_a.headers)
    assert [i["id"] for i in listed.json()["data"]] == [draft["id"]]
    assert listed.json()["data"][0]["customerId"] == mine["id"]
    theirs = await client.get("/api/invoices", headers=tenant_b.headers)
    assert {i["id"] for i in theirs.json()["data"]} == {
        victim.draft["id"],
        victim.open["id"],
        victim.paid_payment["invoiceId"],
    }


@pytest.mark.parametrize("caller", ["api_key", "admin"])
async def test_cannot_pay_another_tenants_invoice(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    tenant_a: TenantHandle,
    tenant_b: TenantHandle,
    victim: Victim,
    caller: str,
) -> None:
    headers = tenant_a.headers if caller == "api_key" else {**admin, "X-Tenant-Id": tenant_a.id}
    before = await snapshot(client, tenant_b, victim)
    for invoice in (victim.open, victim.draft):
        response = await client.post(
            "/api/payments",
            json={"invoiceId": invoice["id"], "amount": "1", "method": "card"},
            headers=headers,
        )
        assert_problem(response, 404, "invoice_not_found")
    assert await snapshot(client, tenant_b, victim) == before
    mine = await client.get("/api/payments", headers=headers)
    assert mine.json()["data"] == []
