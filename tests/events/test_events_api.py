"""GET /api/events and /api/events/{id}: the tenant's whole log, filtered, newest first."""

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import httpx
import pytest

from tenvoice.events.queries import LISTED_TYPES
from tests.conftest import TenantHandle, make_customer, make_invoice
from tests.events.support import (
    EVENT_FIELDS,
    all_events,
    event_ids,
    newest_first,
    occurred,
)
from tests.invoices.support import act_ok
from tests.payments.support import pay
from tests.problems import assert_problem, error_fields
from tests.webhooks.test_endpoints import make_endpoint


@dataclass(frozen=True)
class Story:
    customer: dict[str, Any]
    renamed: dict[str, Any]
    draft: dict[str, Any]
    opened: dict[str, Any]
    payment: dict[str, Any]


async def story(client: httpx.AsyncClient, tenant: TenantHandle) -> Story:
    """A little of everything: two customers (one renamed), a draft, an invoice finalized,
    sent and partly paid (the payment stays pending: no worker runs here)."""
    customer = await make_customer(client, tenant, "Ada Lovelace")
    renamed = await make_customer(client, tenant, "Charles Babbage")
    response = await client.patch(
        f"/api/customers/{renamed['id']}", json={"name": "C. Babbage"}, headers=tenant.headers
    )
    assert response.status_code == 200, response.text
    draft = await make_invoice(client, tenant, customer["id"])
    opened = await make_invoice(client, tenant, customer["id"], finalize=True)
    await act_ok(client, tenant, opened["id"], "send")
    paid = await pay(client, tenant, opened["id"], "1", token="tok_pending")
    assert paid.status_code == 201, paid.text
    return Story(customer, renamed, draft, opened, paid.json())


async def timelines(
    client: httpx.AsyncClient, tenant: TenantHandle, story: Story
) -> dict[str, dict[str, Any]]:
    """Every event of the story's timelines, by id."""
    paths = [
        f"/api/customers/{story.customer['id']}/timeline",
        f"/api/customers/{story.renamed['id']}/timeline",
        f"/api/invoices/{story.draft['id']}/timeline",
        f"/api/invoices/{story.opened['id']}/timeline",
    ]
    found: dict[str, dict[str, Any]] = {}
    for path in paths:
        response = await client.get(path, headers=tenant.headers)
        assert response.status_code == 200, response.text
        found.update({event["id"]: event for event in response.json()["data"]})
    return found


async def test_the_log_is_every_timeline_event_newest_first(
    client: httpx.AsyncClient, tenant_a: TenantHandle, tenant_b: TenantHandle
) -> None:
    mine = await story(client, tenant_a)
    theirs = await story(client, tenant_b)

    events = await all_events(client, tenant_a)
    on_timelines = await timelines(client, tenant_a, mine)
    # One log, two views: the same events, each in the same wire form.
    assert {event["id"]: event for event in events} == on_timelines
    assert [event["id"] for event in events] == newest_first(events)
    assert [event["eventType"] for event in reversed(events)] == [
        "customer.created",
        "customer.created",
        "customer.updated",
        "invoice.created",
        "invoice.created",
        "invoice.finalized",
        "invoice.sent",
        "payment.attempted",
    ]
    for event in events:
        assert event.keys() == EVENT_FIELDS
        assert event["actor"] == {"type": "api_key", "id": tenant_a.key_id}
        assert event["eventType"] in LISTED_TYPES
        # What reading by entityType relies on: an entity's event types are named after it.
        assert event["eventType"].split(".")[0] == event["entityType"]
        assert event["occurredAt"].endswith("Z")
        assert isinstance(event["data"], dict)
    assert not set(on_timelines) & (await timelines(client, tenant_b, theirs)).keys()


async def test_an_event_carries_the_request_that_caused_it(
    client: httpx.AsyncClient, tenant_a: TenantHandle
) -> None:
    response = await client.post(
        "/api/customers",
        json={"name": "Grace Hopper", "email": "grace@example.com"},
        headers={**tenant_a.headers, "X-Request-Id": "req-grace-1"},
    )
    assert response.status_code == 201, response.text
    [event] = await all_events(client, tenant_a)
    assert event["requestId"] == "req-grace-1"
    assert (event["eventType"], event["entityType"]) == ("customer.created", "customer")
    assert event["entityId"] == response.json()["id"]


async def test_one_event_by_id_is_as_listed(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    tenant_a: TenantHandle,
) -> None:
    await story(client, tenant_a)
    events = await all_events(client, tenant_a)
    as_admin = {**admin, "X-Tenant-Id": tenant_a.id}
    for event in events:
        for headers in (tenant_a.headers, as_admin):
            response = await client.get(f"/api/events/{event['id']}", headers=headers)
            assert response.status_code == 200, response.text
            assert response.json() == event


async def test_an_unknown_or_foreign_event_is_404(
    client: httpx.AsyncClient, tenant_a: TenantHandle, tenant_b: TenantHandle
) -> None:
    await make_customer(client, tenant_a)
    await make_customer(client, tenant_b, "Globex Secret Customer")
    [theirs] = await all_events(client, tenant_b)
    for event_id in (theirs["id"], str(uuid.uuid4())):
        response = await client.get(f"/api/events/{event_id}", headers=tenant_a.headers)
        problem = assert_problem(response, 404, "event_not_found")
        assert "Globex" not in response.text, problem
    malformed = await client.get("/api/events/not-a-uuid", headers=tenant_a.headers)
    assert_problem(malformed, 404, "not_found")
    # Still there for its owner.
    response = await client.get(f"/api/events/{theirs['id']}", headers=tenant_b.headers)
    assert response.status_code == 200


def _where(events: list[dict[str, Any]], keep: Any) -> list[str]:
    return [event["id"] for event in events if keep(event)]


async def test_each_filter_alone_and_combined(
    client: httpx.AsyncClient, tenant_a: TenantHandle, tenant_b: TenantHandle
) -> None:
    s = await story(client, tenant_a)
    await story(client, tenant_b)
    events = await all_events(client, tenant_a)
    opened, customer = s.opened["id"], s.customer["id"]

    def of_type(*types: str) -> Any:
        return lambda e: e["eventType"] in types

    def starts(*prefixes: str) -> Any:
        return lambda e: e["eventType"].startswith(prefixes)

    cases: list[tuple[Any, Any]] = [
        ({"type": "customer.created"}, of_type("customer.created")),
        ({"type": "invoice.sent"}, of_type("invoice.sent")),
        ({"type": ["customer.updated", "invoice.finalized"]}, of_type(*_TWO)),
        ({"type": "customer.updated,invoice.finalized"}, of_type(*_TWO)),
        ({"type": "invoice.*"}, starts("invoice.")),
        ({"type": ["invoice.*", "payment.attempted"]}, starts("invoice.", "payment.")),
        ({"type": ["customer.*", "invoice.created"]}, _customer_or_created),
        ({"type": ["invoice.*", "invoice.sent"]}, starts("invoice.")),
        ({"type": "*"}, lambda e: True),
        ({"type": ["*", "invoice.paid"]}, lambda e: True),
        ({"type": "invoice.paid"}, lambda e: False),
        ({"type": "webhook_endpoint.*"}, lambda e: False),
        ({"type": "webhook_endpoint.test"}, lambda e: False),
        ({"entityType": "customer"}, lambda e: e["entityType"] == "customer"),
        ({"entityType": "payment"}, lambda e: e["entityType"] == "payment"),
        ({"entityType": "credit_note"}, lambda e: False),
        ({"entityId": opened}, lambda e: e["entityId"] == opened),
        ({"entityId": s.payment["id"]}, lambda e: e["entityId"] == s.payment["id"]),
        ({"entityId": str(uuid.uuid4())}, lambda e: False),
        (
            {"entityId": opened, "type": ["invoice.finalized", "invoice.sent"]},
            lambda e: e["entityId"] == opened and e["eventType"] in _FINALIZED_SENT,
        ),
        ({"entityId": customer, "type": "invoice.*"}, lambda e: False),
        (
            {"entityType": "invoice", "type": ["invoice.created", "customer.created"]},
            of_type("invoice.created"),
        ),
        (
            {"entityType": "customer", "entityId": customer},
            lambda e: e["entityId"] == customer,
        ),
    ]
    for params, keep in cases:
        assert await event_ids(client, tenant_a, params) == _where(events, keep), params


_TWO = ("customer.updated", "invoice.finalized")
_FINALIZED_SENT = ("invoice.finalized", "invoice.sent")


def _customer_or_created(event: dict[str, Any]) -> bool:
    event_type: str = event["eventType"]
    return event_type.startswith("customer.") or event_type == "invoice.created"


async def test_time_window_is_inclusive_and_reads_any_offset(
    client: httpx.AsyncClient, tenant_a: TenantHandle
) -> None:
    await story(client, tenant_a)
    events = await all_events(client, tenant_a)
    middle, later = occurred(events[5]), occurred(events[2])
    z = middle.isoformat().replace("+00:00", "Z")
    in_paris = middle.astimezone(timezone(timedelta(hours=2))).isoformat()
    assert in_paris.endswith("+02:00")

    def between(low: datetime | None, high: datetime | None) -> Any:
        return lambda e: (
            (low is None or occurred(e) >= low) and (high is None or occurred(e) <= high)
        )

    cases: list[tuple[Any, Any]] = [
        ({"occurredFrom": z}, between(middle, None)),
        ({"occurredFrom": in_paris}, between(middle, None)),
        # A "+" the client forgot to encode arrives as a space; it still means "+".
        ("occurredFrom=" + in_paris, between(middle, None)),
        ({"occurredTo": z}, between(None, middle)),
        ({"occurredFrom": z, "occurredTo": z}, between(middle, middle)),
        (
            {"occurredFrom": z, "occurredTo": later.isoformat()},
            between(middle, later),
        ),
        (
            {"occurredFrom": z, "type": ["invoice.*", "customer.created"]},
            lambda e: occurred(e) >= middle and e["eventType"].startswith(_INVOICE_OR_CREATED),
        ),
        (
            {"occurredTo": z, "entityType": "customer"},
            lambda e: occurred(e) <= middle and e["entityType"] == "customer",
        ),
        ({"occurredFrom": "2999-01-01T00:00:00Z"}, lambda e: False),
        ({"occurredTo": "2000-01-01T00:00:00.123456789+05:30"}, lambda e: False),
    ]
    for params, keep in cases:
        if isinstance(params, str):
            response = await client.get(
                f"/api/events?{params}&pageSize=100", headers=tenant_a.headers
            )
            assert response.status_code == 200, response.text
            ids = [event["id"] for event in response.json()["data"]]
        else:
            ids = await event_ids(client, tenant_a, params)
        expected = _where(events, keep)
        assert ids == expected, params
    assert 0 < len(_where(events, between(middle, later))) < len(events)


_INVOICE_OR_CREATED = ("invoice.", "customer.created")


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"type": "invoice.bogus"}, "type"),
        ({"type": "bogus.*"}, "type"),
        ({"type": "invoice"}, "type"),
        ({"type": "invoice.%"}, "type"),
        ({"type": "invoice.*.*"}, "type"),
        ({"type": ""}, "type"),
        ({"type": "invoice.paid,nope"}, "type"),
        ({"type": ["invoice.paid", "INVOICE.PAID"]}, "type"),
        ({"entityType": "planet"}, "entityType"),
        ({"entityId": "not-a-uuid"}, "entityId"),
        ({"occurredFrom": "yesterday"}, "occurredFrom"),
        ({"occurredFrom": "2026-01-01"}, "occurredFrom"),
        ({"occurredFrom": "2026-01-01T00:00:00"}, "occurredFrom"),
        ({"occurredFrom": "1700000000"}, "occurredFrom"),
        ({"occurredFrom": "2026-02-30T00:00:00Z"}, "occurredFrom"),
        ({"occurredTo": "2026-01-01T25:00:00Z"}, "occurredTo"),
        ({"occurredTo": "0001-01-01T00:00:00+05:00"}, "occurredTo"),
        (
            {"occurredFrom": "2026-01-02T00:00:00Z", "occurredTo": "2026-01-01T23:59:59Z"},
            "occurredFrom",
        ),
        ({"page": "2", "cursor": "abc"}, "cursor"),
        ({"page": "1001"}, "page"),
    ],
)
async def test_bad_filters_are_422(
    client: httpx.AsyncClient, tenant_a: TenantHandle, params: dict[str, Any], field: str
) -> None:
    response = await client.get("/api/events", params=params, headers=tenant_a.headers)
    code = "offset_too_deep" if field == "page" else "validation_failed"
    problem = assert_problem(response, 422, code)
    assert field in error_fields(problem), problem


async def test_the_events_routes_are_documented(client: httpx.AsyncClient) -> None:
    schema = (await client.get("/openapi.json")).json()
    listed = schema["paths"]["/api/events"]["get"]
    one = schema["paths"]["/api/events/{event_id}"]["get"]
    assert listed["tags"] == one["tags"] == ["events"]
    params = {param["name"] for param in listed["parameters"]}
    assert params >= {"type", "entityType", "entityId", "occurredFrom", "occurredTo", "cursor"}
    assert "Page_EventOut_" in str(listed["responses"]["200"])
    assert "EventOut" in str(one["responses"]["200"])
    assert "404" in one["responses"]
    event = schema["components"]["schemas"]["EventOut"]["properties"]
    assert set(event) == EVENT_FIELDS


async def test_a_day_of_events_is_not_everything(
    client: httpx.AsyncClient, tenant_a: TenantHandle
) -> None:
    await make_customer(client, tenant_a)
    now = datetime.now(UTC)
    yesterday = (now - timedelta(days=1)).isoformat()
    assert len(await event_ids(client, tenant_a, {"occurredFrom": yesterday})) == 1
    assert await event_ids(client, tenant_a, {"occurredTo": yesterday}) == []


async def test_an_endpoint_test_event_is_in_the_log_under_its_type_and_prefix(
    client: httpx.AsyncClient, tenant_a: TenantHandle
) -> None:
    await make_customer(client, tenant_a)
    endpoint = await make_endpoint(client, tenant_a)
    tested = await client.post(
        f"/api/webhook-endpoints/{endpoint['id']}/test", headers=tenant_a.headers
    )
    assert tested.status_code == 202, tested.text
    [event] = await all_events(client, tenant_a, {"type": "webhook_endpoint.test"})
    assert (event["entityType"], event["entityId"]) == ("webhook_endpoint", endpoint["id"])
    for params in (
        {"type": "webhook_endpoint.*"},
        {"type": ["webhook_endpoint.*", "invoice.*"]},
        {"entityType": "webhook_endpoint"},
        {"entityId": endpoint["id"]},
    ):
        assert await event_ids(client, tenant_a, params) == [event["id"]], params
    assert len(await event_ids(client, tenant_a)) == 2
