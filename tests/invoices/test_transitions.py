"""Status changes over HTTP: every action from every status, overdue, and the timeline."""

from datetime import UTC, datetime, timedelta

import httpx
import pytest

from tests.conftest import TenantHandle, make_customer, make_invoice
from tests.invoices.support import (
    ACTIONS,
    STATUSES,
    ZERO_ITEMS,
    act,
    fetch,
    invoice_in,
    list_invoices,
    timeline,
)
from tests.problems import assert_problem

# (status, action) -> (status after, timestamp it sets, event it records), from API.md.
ALLOWED: dict[tuple[str, str], tuple[str, str, str]] = {
    ("draft", "finalize"): ("open", "finalizedAt", "invoice.finalized"),
    ("open", "send"): ("open", "sentAt", "invoice.sent"),
    ("open", "void"): ("void", "voidedAt", "invoice.voided"),
    ("open", "mark-uncollectible"): (
        "uncollectible",
        "markedUncollectibleAt",
        "invoice.marked_uncollectible",
    ),
    ("uncollectible", "send"): ("uncollectible", "sentAt", "invoice.sent"),
    ("uncollectible", "void"): ("void", "voidedAt", "invoice.voided"),
}


@pytest.mark.parametrize("status", STATUSES)
async def test_every_action_from(
    client: httpx.AsyncClient, tenant_a: TenantHandle, status: str
) -> None:
    customer = await make_customer(client, tenant_a)
    for action in ACTIONS:
        invoice = await invoice_in(client, tenant_a, customer["id"], status)
        events_before = await timeline(client, tenant_a, invoice["id"])
        response = await act(client, tenant_a, invoice["id"], action)
        outcome = ALLOWED.get((status, action))
        if outcome is None:
            assert_problem(response, 409, "invalid_invoice_transition")
            assert await fetch(client, tenant_a, invoice["id"]) == invoice, action
            assert await timeline(client, tenant_a, invoice["id"]) == events_before, action
            continue
        assert response.status_code == 200, (action, response.text)
        changed = response.json()
        target, stamp, event_type = outcome
        assert changed["status"] == target, action
        assert invoice[stamp] is None
        assert changed[stamp] is not None
        assert changed["updatedAt"] == changed[stamp]
        assert await fetch(client, tenant_a, invoice["id"]) == changed
        events = await timeline(client, tenant_a, invoice["id"])
        assert [e["eventType"] for e in events] == [
            *(e["eventType"] for e in events_before),
            event_type,
        ]
        if target == "void":
            assert changed["amountDue"] == "0.00"
            assert events[-1]["data"]["previousStatus"] == status


async def test_finalize_assigns_number_and_keeps_the_amounts(
    client: httpx.AsyncClient, tenant_a: TenantHandle
) -> None:
    customer = await make_customer(client, tenant_a)
    draft = await make_invoice(client, tenant_a, customer["id"])
    response = await act(client, tenant_a, draft["id"], "finalize")
    assert response.status_code == 200, response.text
    invoice = response.json()
    assert invoice["number"] is not None
    year = invoice["finalizedAt"][:4]
    assert invoice["number"] == f"INV-{year}-00001"
    assert (invoice["total"], invoice["amountDue"]) == ("277.50", "277.50")
    assert invoice["items"] == draft["items"]
    assert (invoice["paidAt"], invoice["sentAt"]) == (None, None)
    [_, finalized] = await timeline(client, tenant_a, draft["id"])
    assert finalized["data"]["number"] == invoice["number"]
    assert finalized["data"]["total"] == "277.50"
    assert finalized["data"]["dueDate"] == invoice["dueDate"]


async def test_zero_total_invoice_is_paid_on_finalize(
    client: httpx.AsyncClient, tenant_a: TenantHandle
) -> None:
    customer = await make_customer(client, tenant_a)
    draft = await make_invoice(client, tenant_a, customer["id"], items=ZERO_ITEMS)
    response = await act(client, tenant_a, draft["id"], "finalize")
    assert response.status_code == 200, response.text
    invoice = response.json()
    assert invoice["status"] == "paid"
    assert invoice["number"] is not None
    assert (invoice["total"], invoice["amountDue"]) == ("0.00", "0.00")
    assert invoice["paidAt"] == invoice["finalizedAt"]
    events = await timeline(client, tenant_a, draft["id"])
    assert [e["eventType"] for e in events] == [
        "invoice.created",
        "invoice.finalized",
        "invoice.paid",
    ]


async def test_send_records_sent_at_and_can_repeat(
    client: httpx.AsyncClient, tenant_a: TenantHandle
) -> None:
    customer = await make_customer(client, tenant_a)
    invoice = await invoice_in(client, tenant_a, customer["id"], "open")
    first = (await act(client, tenant_a, invoice["id"], "send")).json()
    second = (await act(client, tenant_a, invoice["id"], "send")).json()
    assert first["status"] == second["status"] == "open"
    assert datetime.fromisoformat(second["sentAt"]) >= datetime.fromisoformat(first["sentAt"])
    events = await timeline(client, tenant_a, invoice["id"])
    sent = [e for e in events if e["eventType"] == "invoice.sent"]
    assert len(sent) == 2
    assert sent[0]["data"]["number"] == invoice["number"]
    assert sent[0]["data"]["customerId"] == customer["id"]


def _days(offset: int) -> str:
    return (datetime.now(UTC).date() + timedelta(days=offset)).isoformat()


async def test_overdue_means_open_and_past_due(
    client: httpx.AsyncClient, tenant_a: TenantHandle
) -> None:
    customer = await make_customer(client, tenant_a)
    past = {"issueDate": "2020-01-01", "dueDate": "2020-01-31"}
    late = await invoice_in(client, tenant_a, customer["id"], "open", **past)
    assert late["overdue"] is True
    assert (await fetch(client, tenant_a, late["id"]))["overdue"] is True

    due_today = await invoice_in(
        client, tenant_a, customer["id"], "open", issueDate=_days(-1), dueDate=_days(0)
    )
    future = await invoice_in(client, tenant_a, customer["id"], "open")
    not_open = [
        await invoice_in(client, tenant_a, customer["id"], status, **past)
        for status in ("draft", "paid", "void", "uncollectible")
    ]
    for invoice in (due_today, future, *not_open):
        assert invoice["overdue"] is False, invoice["status"]
        assert (await fetch(client, tenant_a, invoice["id"]))["overdue"] is False

    listing = await list_invoices(client, tenant_a, {"pageSize": "100"})
    flags = {row["id"]: row["overdue"] for row in listing["data"]}
    assert [key for key, flag in flags.items() if flag] == [late["id"]]

    voided = await act(client, tenant_a, late["id"], "void")
    assert voided.json()["overdue"] is False


async def _post(
    client: httpx.AsyncClient, url: str, tenant: TenantHandle, request_id: str
) -> httpx.Response:
    return await client.post(url, headers={**tenant.headers, "X-Request-Id": request_id})


async def test_timeline_records_actor_and_request_id_in_order(
    client: httpx.AsyncClient, tenant_a: TenantHandle
) -> None:
    customer = await make_customer(client, tenant_a)
    headers = {**tenant_a.headers, "X-Request-Id": "req-create"}
    # Tenant A taxes 11% by default: 5 + 0.55.
    body = {
        "customerId": customer["id"],
        "items": [{"description": "W", "quantity": 1, "unitPrice": 5}],
    }
    response = await client.post("/api/invoices", json=body, headers=headers)
    assert response.status_code == 201, response.text
    assert response.headers["x-request-id"] == "req-create"
    invoice_id = response.json()["id"]
    url = f"/api/invoices/{invoice_id}"
    patch_headers = {**tenant_a.headers, "X-Request-Id": "req-patch"}
    response = await client.patch(url, json={"memo": "m"}, headers=patch_headers)
    assert response.status_code == 200, response.text
    steps = {
        "finalize": "req-fin",
        "send": "req-send",
        "mark-uncollectible": "req-unc",
        "void": "req-void",
    }
    for action, request_id in steps.items():
        response = await _post(client, f"{url}/{action}", tenant_a, request_id)
        assert response.status_code == 200, response.text
    # A refused change leaves no trace on the timeline.
    response = await _post(client, f"{url}/finalize", tenant_a, "req-refused")
    assert_problem(response, 409, "invalid_invoice_transition")

    events = await timeline(client, tenant_a, invoice_id)
    assert [(e["eventType"], e["requestId"]) for e in events] == [
        ("invoice.created", "req-create"),
        ("invoice.updated", "req-patch"),
        ("invoice.finalized", "req-fin"),
        ("invoice.sent", "req-send"),
        ("invoice.marked_uncollectible", "req-unc"),
        ("invoice.voided", "req-void"),
    ]
    for event in events:
        assert event["actor"] == {"type": "api_key", "id": tenant_a.key_id}
        assert (event["entityType"], event["entityId"]) == ("invoice", invoice_id)
    times = [datetime.fromisoformat(e["occurredAt"]) for e in events]
    assert times == sorted(times)
    assert events[0]["data"]["total"] == "5.55"
    assert events[1]["data"]["changed"] == ["memo"]
    assert events[5]["data"]["previousStatus"] == "uncollectible"


async def test_admin_acting_as_a_tenant_is_the_recorded_actor(
    client: httpx.AsyncClient, admin: dict[str, str], tenant_a: TenantHandle
) -> None:
    customer = await make_customer(client, tenant_a)
    as_tenant = {**admin, "X-Tenant-Id": tenant_a.id}
    body = {"customerId": customer["id"], "items": ZERO_ITEMS, "finalize": True}
    response = await client.post("/api/invoices", json=body, headers=as_tenant)
    assert response.status_code == 201, response.text
    invoice = response.json()
    assert invoice["status"] == "paid"
    response = await client.get(f"/api/invoices/{invoice['id']}/timeline", headers=as_tenant)
    assert response.status_code == 200, response.text
    events = response.json()["data"]
    assert [e["eventType"] for e in events] == [
        "invoice.created",
        "invoice.finalized",
        "invoice.paid",
    ]
    assert {e["actor"]["type"] for e in events} == {"admin"}
    # The tenant's own key sees the same invoice: the admin wrote into tenant A.
    assert (await fetch(client, tenant_a, invoice["id"]))["id"] == invoice["id"]

    response = await client.post("/api/invoices", json=body, headers=admin)
    assert_problem(response, 400, "tenant_required")
