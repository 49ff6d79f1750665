"""Creating, reading, editing and deleting draft invoices over HTTP."""

import re
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx

from tests.conftest import TenantHandle, make_customer, make_invoice
from tests.invoices.support import (
    act_ok,
    fetch,
    invoice_in,
    item,
    list_invoices,
    timeline,
)
from tests.problems import assert_problem, error_fields

NUMBER = re.compile(r"^INV-\d{4}-\d{5}$")
ONE = {"description": "Work", "quantity": 1, "unitPrice": "1"}


def _instant(value: str) -> datetime:
    return datetime.fromisoformat(value)


def _today() -> date:
    return datetime.now(UTC).date()


async def test_create_applies_the_tenant_defaults(
    client: httpx.AsyncClient, tenant_a: TenantHandle, tenant_b: TenantHandle
) -> None:
    customer = await make_customer(client, tenant_a)
    before = _today()
    invoice = await make_invoice(client, tenant_a, customer["id"])
    assert (invoice["currency"], invoice["status"], invoice["number"]) == ("USD", "draft", None)
    assert date.fromisoformat(invoice["issueDate"]) in {before, _today()}
    due = date.fromisoformat(invoice["issueDate"]) + timedelta(days=30)
    assert invoice["dueDate"] == due.isoformat()
    assert [line["taxRate"] for line in invoice["items"]] == ["11", "11"]
    assert (invoice["subtotal"], invoice["tax"], invoice["total"]) == ("250.00", "27.50", "277.50")
    assert (invoice["amountPaid"], invoice["amountDue"]) == ("0.00", "277.50")
    assert (invoice["memo"], invoice["metadata"], invoice["overdue"]) == (None, {}, False)
    assert invoice["finalizedAt"] is None
    assert invoice["customerId"] == customer["id"]
    assert await fetch(client, tenant_a, invoice["id"]) == invoice

    # Globex: EUR and no tax by default.
    other = await make_customer(client, tenant_b)
    invoice = await make_invoice(client, tenant_b, other["id"])
    assert invoice["currency"] == "EUR"
    assert [line["taxRate"] for line in invoice["items"]] == ["0", "0"]
    assert (invoice["subtotal"], invoice["tax"], invoice["total"]) == ("250.00", "0.00", "250.00")


async def test_create_with_explicit_values(
    client: httpx.AsyncClient, tenant_a: TenantHandle
) -> None:
    customer = await make_customer(client, tenant_a)
    invoice = await make_invoice(
        client,
        tenant_a,
        customer["id"],
        currency="kwd",
        issueDate="2026-02-01",
        dueDate="2026-02-01",
        memo="Net 0",
        metadata={"po": "1234"},
        # JSON numbers are accepted too; 0.1 must stay exactly 0.1.
        items=[
            item("1.25", quantity="2", tax_rate="12.5"),
            {"description": "Pens", "quantity": 3, "unitPrice": 0.1, "taxRate": 0},
        ],
    )
    assert invoice["currency"] == "KWD"
    assert (invoice["issueDate"], invoice["dueDate"]) == ("2026-02-01", "2026-02-01")
    assert (invoice["memo"], invoice["metadata"]) == ("Net 0", {"po": "1234"})
    first, second = invoice["items"]
    assert (first["quantity"], first["unitPrice"], first["taxRate"]) == ("2", "1.250", "12.5")
    assert (first["subtotal"], first["tax"], first["total"]) == ("2.500", "0.313", "2.813")
    assert (second["unitPrice"], second["subtotal"], second["total"]) == ("0.100", "0.300", "0.300")
    assert (invoice["subtotal"], invoice["tax"], invoice["total"]) == ("2.800", "0.313", "3.113")

    invoice = await make_invoice(client, tenant_a, customer["id"], issueDate="2026-12-30")
    assert invoice["dueDate"] == "2027-01-29"

    invoice = await make_invoice(
        client, tenant_a, customer["id"], currency="JPY", items=[item("1500", quantity="7")]
    )
    assert (invoice["total"], invoice["items"][0]["unitPrice"]) == ("10500", "1500")


async def test_create_and_finalize_at_once(
    client: httpx.AsyncClient, tenant_a: TenantHandle
) -> None:
    customer = await make_customer(client, tenant_a)
    invoice = await make_invoice(client, tenant_a, customer["id"], finalize=True)
    assert invoice["status"] == "open"
    assert NUMBER.match(invoice["number"])
    assert invoice["finalizedAt"] is not None
    events = await timeline(client, tenant_a, invoice["id"])
    assert [event["eventType"] for event in events] == ["invoice.created", "invoice.finalized"]


async def test_five_hundred_items_is_the_limit(
    client: httpx.AsyncClient, tenant_a: TenantHandle
) -> None:
    customer = await make_customer(client, tenant_a)
    invoice = await make_invoice(client, tenant_a, customer["id"], items=[item("0.01")] * 500)
    assert len(invoice["items"]) == 500
    assert invoice["total"] == "5.00"
    assert len((await fetch(client, tenant_a, invoice["id"]))["items"]) == 500


BAD_CREATES: list[tuple[str, dict[str, Any], set[str]]] = [
    ("due before issue", {"issueDate": "2026-02-02", "dueDate": "2026-02-01"}, {"dueDate"}),
    ("due before today", {"dueDate": "2000-01-01"}, {"dueDate"}),
    ("no default due date", {"issueDate": "9999-12-31"}, {"dueDate"}),
    ("no items", {"items": []}, {"items"}),
    ("501 items", {"items": [ONE] * 501}, {"items"}),
    ("quantity 0", {"items": [{**ONE, "quantity": 0}]}, {"items[0].quantity"}),
    ("quantity < 0", {"items": [{**ONE, "quantity": "-1"}]}, {"items[0].quantity"}),
    ("quantity 5 places", {"items": [{**ONE, "quantity": "1.00001"}]}, {"items[0].quantity"}),
    ("quantity NaN", {"items": [{**ONE, "quantity": "NaN"}]}, {"items[0].quantity"}),
    ("quantity bool", {"items": [{**ONE, "quantity": True}]}, {"items[0].quantity"}),
    ("unitPrice 7 places", {"items": [{**ONE, "unitPrice": "1.0000001"}]}, {"items[0].unitPrice"}),
    ("unitPrice < 0", {"items": [{**ONE, "unitPrice": -1}]}, {"items[0].unitPrice"}),
    ("taxRate > 100", {"items": [{**ONE, "taxRate": "100.01"}]}, {"items[0].taxRate"}),
    ("taxRate < 0", {"items": [{**ONE, "taxRate": "-1"}]}, {"items[0].taxRate"}),
    ("empty description", {"items": [{**ONE, "description": ""}]}, {"items[0].description"}),
    ("unknown item field", {"items": [{**ONE, "foo": 1}]}, {"items[0].foo"}),
    ("snake item field", {"items": [{**ONE, "tax_rate": "1"}]}, {"items[0].tax_rate"}),
    ("unknown field", {"discount": "5"}, {"discount"}),
    ("unknown currency", {"currency": "XYZ"}, {"currency"}),
    ("numeric currency", {"currency": 840}, {"currency"}),
    ("impossible date", {"issueDate": "2026-02-30"}, {"issueDate"}),
    ("datetime as date", {"issueDate": "2026-02-01T00:00:00Z"}, {"issueDate"}),
    ("unitPrice 1_000", {"items": [{**ONE, "unitPrice": "1_000"}]}, {"items[0].unitPrice"}),
    ("unitPrice 1e3", {"items": [{**ONE, "unitPrice": "1e3"}]}, {"items[0].unitPrice"}),
    ("finalize as a string", {"finalize": "yes"}, {"finalize"}),
    ("finalize as 1", {"finalize": 1}, {"finalize"}),
]


async def test_invalid_creates_are_422_and_create_nothing(
    client: httpx.AsyncClient, tenant_a: TenantHandle
) -> None:
    customer = await make_customer(client, tenant_a)
    for case, fields, expected in BAD_CREATES:
        body = {"customerId": customer["id"], "items": [ONE], **fields}
        response = await client.post("/api/invoices", json=body, headers=tenant_a.headers)
        problem = assert_problem(response, 422, "validation_failed")
        assert error_fields(problem) == expected, case

    # snake_case is an unknown field, not a synonym of customerId.
    body = {"customer_id": customer["id"], "items": [ONE]}
    response = await client.post("/api/invoices", json=body, headers=tenant_a.headers)
    problem = assert_problem(response, 422, "validation_failed")
    assert error_fields(problem) == {"customer_id", "customerId"}

    listing = await list_invoices(client, tenant_a, {"includeTotal": "true"})
    assert listing["pagination"]["totalCount"] == 0


async def test_customer_must_be_the_tenants_own_and_alive(
    client: httpx.AsyncClient, tenant_a: TenantHandle, tenant_b: TenantHandle
) -> None:
    theirs = await make_customer(client, tenant_b)
    gone = await make_customer(client, tenant_a)
    deleted = await client.delete(f"/api/customers/{gone['id']}", headers=tenant_a.headers)
    assert deleted.status_code == 204
    for customer_id in (theirs["id"], gone["id"], str(uuid.uuid4())):
        for finalize in (False, True):
            body = {"customerId": customer_id, "items": [ONE], "finalize": finalize}
            response = await client.post("/api/invoices", json=body, headers=tenant_a.headers)
            assert_problem(response, 404, "customer_not_found")
    for tenant in (tenant_a, tenant_b):
        listing = await list_invoices(client, tenant, {"includeTotal": "true"})
        assert listing["pagination"]["totalCount"] == 0


async def test_patch_replaces_items_and_recomputes_totals(
    client: httpx.AsyncClient, tenant_a: TenantHandle
) -> None:
    customer = await make_customer(client, tenant_a)
    draft = await make_invoice(client, tenant_a, customer["id"])
    items = [item("9.99", quantity="3", tax_rate="10")]
    response = await client.patch(
        f"/api/invoices/{draft['id']}", json={"items": items}, headers=tenant_a.headers
    )
    assert response.status_code == 200, response.text
    patched = response.json()
    assert len(patched["items"]) == 1
    assert {line["id"] for line in patched["items"]}.isdisjoint(
        line["id"] for line in draft["items"]
    )
    assert (patched["subtotal"], patched["tax"], patched["total"]) == ("29.97", "3.00", "32.97")
    assert patched["amountDue"] == "32.97"
    assert _instant(patched["updatedAt"]) > _instant(draft["updatedAt"])
    assert patched["createdAt"] == draft["createdAt"]
    assert await fetch(client, tenant_a, draft["id"]) == patched
    events = await timeline(client, tenant_a, draft["id"])
    assert [e["eventType"] for e in events] == ["invoice.created", "invoice.updated"]
    assert events[1]["data"]["changed"] == ["items"]
    assert events[1]["data"]["total"] == "32.97"


async def test_patch_currency_reprices_the_lines(
    client: httpx.AsyncClient, tenant_a: TenantHandle
) -> None:
    customer = await make_customer(client, tenant_a)
    draft = await make_invoice(client, tenant_a, customer["id"], items=[item("10.5")])
    assert draft["total"] == "10.50"
    url = f"/api/invoices/{draft['id']}"
    response = await client.patch(url, json={"currency": "JPY"}, headers=tenant_a.headers)
    assert response.status_code == 200, response.text
    patched = response.json()
    assert (patched["currency"], patched["total"]) == ("JPY", "11")
    assert patched["items"][0]["unitPrice"] == "10.5"
    assert patched["items"][0]["subtotal"] == "11"

    body = {"currency": "KWD", "items": [item("1.2345")]}
    response = await client.patch(url, json=body, headers=tenant_a.headers)
    assert response.status_code == 200, response.text
    assert (response.json()["currency"], response.json()["total"]) == ("KWD", "1.235")
    assert (await fetch(client, tenant_a, draft["id"]))["total"] == "1.235"


async def test_patch_scalar_fields_and_clear_memo(
    client: httpx.AsyncClient, tenant_a: TenantHandle
) -> None:
    customer = await make_customer(client, tenant_a)
    other = await make_customer(client, tenant_a, "Grace Hopper")
    draft = await make_invoice(client, tenant_a, customer["id"], memo="old")
    url = f"/api/invoices/{draft['id']}"
    body = {
        "customerId": other["id"],
        "issueDate": "2026-05-01",
        "dueDate": "2026-05-15",
        "metadata": {"k": "v"},
    }
    response = await client.patch(url, json=body, headers=tenant_a.headers)
    assert response.status_code == 200, response.text
    patched = response.json()
    assert patched["customerId"] == other["id"]
    assert (patched["issueDate"], patched["dueDate"]) == ("2026-05-01", "2026-05-15")
    assert (patched["metadata"], patched["memo"], patched["total"]) == ({"k": "v"}, "old", "277.50")

    response = await client.patch(url, json={"memo": None}, headers=tenant_a.headers)
    assert response.status_code == 200, response.text
    assert (await fetch(client, tenant_a, draft["id"]))["memo"] is None
    # Null clears metadata too, as Stripe's empty value does.
    response = await client.patch(url, json={"metadata": None}, headers=tenant_a.headers)
    assert response.status_code == 200, response.text
    assert (await fetch(client, tenant_a, draft["id"]))["metadata"] == {}


async def test_rejected_patches_change_nothing(
    client: httpx.AsyncClient, tenant_a: TenantHandle, tenant_b: TenantHandle
) -> None:
    customer = await make_customer(client, tenant_a)
    theirs = await make_customer(client, tenant_b)
    draft = await make_invoice(client, tenant_a, customer["id"], issueDate="2026-05-10")
    url = f"/api/invoices/{draft['id']}"
    invalid: list[tuple[dict[str, Any], set[str]]] = [
        ({"dueDate": "2026-05-09"}, {"dueDate"}),
        ({"issueDate": "2026-07-01"}, {"dueDate"}),
        ({"items": []}, {"items"}),
        ({"items": None}, {"items"}),
        ({"currency": None}, {"currency"}),
        ({"customerId": None}, {"customerId"}),
        ({"issueDate": None}, {"issueDate"}),
        ({"currency": "ZZZ"}, {"currency"}),
        ({"memo": "ok", "items": [{**ONE, "unitPrice": "0.0000001"}]}, {"items[0].unitPrice"}),
        ({"status": "open"}, {"status"}),
        ({"due_date": "2026-06-01"}, {"due_date"}),
    ]
    for body, fields in invalid:
        response = await client.patch(url, json=body, headers=tenant_a.headers)
        assert error_fields(assert_problem(response, 422, "validation_failed")) == fields, body
    gone = await make_customer(client, tenant_a)
    assert (
        await client.delete(f"/api/customers/{gone['id']}", headers=tenant_a.headers)
    ).is_success
    for customer_id in (theirs["id"], gone["id"]):
        body = {"customerId": customer_id, "memo": "x"}
        response = await client.patch(url, json=body, headers=tenant_a.headers)
        assert_problem(response, 404, "customer_not_found")
    # Nothing to change is not an error, and leaves no event either.
    response = await client.patch(url, json={"currency": "usd"}, headers=tenant_a.headers)
    assert response.status_code == 200, response.text

    assert await fetch(client, tenant_a, draft["id"]) == draft
    assert len(await timeline(client, tenant_a, draft["id"])) == 1


async def test_only_drafts_can_be_patched_or_deleted(
    client: httpx.AsyncClient, tenant_a: TenantHandle
) -> None:
    customer = await make_customer(client, tenant_a)
    for status in ("open", "paid", "void", "uncollectible"):
        invoice = await invoice_in(client, tenant_a, customer["id"], status)
        url = f"/api/invoices/{invoice['id']}"
        response = await client.patch(url, json={"memo": "late"}, headers=tenant_a.headers)
        assert_problem(response, 409, "invoice_not_editable")
        response = await client.delete(url, headers=tenant_a.headers)
        assert_problem(response, 409, "invoice_not_deletable")
        assert await fetch(client, tenant_a, invoice["id"]) == invoice


async def test_delete_a_draft(client: httpx.AsyncClient, tenant_a: TenantHandle) -> None:
    customer = await make_customer(client, tenant_a)
    draft = await make_invoice(client, tenant_a, customer["id"])
    kept = await make_invoice(client, tenant_a, customer["id"])
    url = f"/api/invoices/{draft['id']}"
    response = await client.delete(url, headers=tenant_a.headers)
    assert response.status_code == 204
    assert response.content == b""
    assert_problem(await client.get(url, headers=tenant_a.headers), 404, "invoice_not_found")
    response = await client.get(f"{url}/timeline", headers=tenant_a.headers)
    assert_problem(response, 404, "invoice_not_found")
    assert_problem(await client.delete(url, headers=tenant_a.headers), 404, "invoice_not_found")
    listing = await list_invoices(client, tenant_a)
    assert [row["id"] for row in listing["data"]] == [kept["id"]]


async def test_another_tenants_invoice_is_not_found(
    client: httpx.AsyncClient, tenant_a: TenantHandle, tenant_b: TenantHandle
) -> None:
    customer = await make_customer(client, tenant_a)
    draft = await make_invoice(client, tenant_a, customer["id"])
    url = f"/api/invoices/{draft['id']}"
    theirs = tenant_b.headers
    assert_problem(await client.get(url, headers=theirs), 404, "invoice_not_found")
    assert_problem(await client.get(f"{url}/timeline", headers=theirs), 404, "invoice_not_found")
    response = await client.patch(url, json={"memo": "mine"}, headers=theirs)
    assert_problem(response, 404, "invoice_not_found")
    assert_problem(await client.delete(url, headers=theirs), 404, "invoice_not_found")
    for action in ("finalize", "send", "void", "mark-uncollectible"):
        response = await client.post(f"{url}/{action}", headers=theirs)
        assert_problem(response, 404, "invoice_not_found")
    assert await fetch(client, tenant_a, draft["id"]) == draft
    await act_ok(client, tenant_a, draft["id"], "finalize")


async def test_unknown_or_malformed_ids_are_not_found(
    client: httpx.AsyncClient, tenant_a: TenantHandle
) -> None:
    for invoice_id in (str(uuid.uuid4()), "not-a-uuid", "1"):
        response = await client.get(f"/api/invoices/{invoice_id}", headers=tenant_a.headers)
        assert response.status_code == 404, invoice_id
        response = await client.post(
            f"/api/invoices/{invoice_id}/finalize", headers=tenant_a.headers
        )
        assert response.status_code == 404, invoice_id
