"""Snapshots as the log writer stores them: `data.object` is the entity as its GET returned
it right after the change, and an invoice's is stored without its public link."""

import uuid

import httpx
from sqlalchemy import String, cast, select

from tenvoice.events.models import Event
from tenvoice.platform.db import Database
from tests.conftest import TenantHandle, make_customer, make_invoice
from tests.events.support import all_events, read_everywhere
from tests.invoices.support import act_ok, fetch
from tests.payments.support import pay


async def test_an_invoice_event_holds_the_invoice_as_get_returned_it(
    client: httpx.AsyncClient, tenant_a: TenantHandle
) -> None:
    customer = await make_customer(client, tenant_a)
    draft = await make_invoice(client, tenant_a, customer["id"])
    created_then = await fetch(client, tenant_a, draft["id"])
    finalized = await act_ok(client, tenant_a, draft["id"], "finalize")
    finalized_then = await fetch(client, tenant_a, draft["id"])
    assert finalized_then == finalized
    assert finalized_then["hostedUrl"]
    await act_ok(client, tenant_a, draft["id"], "send")  # later changes leave snapshots be

    events = await all_events(client, tenant_a, {"entityId": draft["id"]})
    by_type = {event["eventType"]: event for event in events}
    for event_type, expected in (
        ("invoice.created", created_then),
        ("invoice.finalized", finalized_then),
    ):
        for event in await read_everywhere(
            client, tenant_a, by_type[event_type]["id"], draft["id"]
        ):
            assert event["data"]["object"] == expected, event_type
    [customer_event] = await all_events(client, tenant_a, {"entityId": customer["id"]})
    assert customer_event["data"]["object"] == customer


async def test_the_log_never_holds_a_public_link(
    client: httpx.AsyncClient, db: Database, tenant_a: TenantHandle
) -> None:
    customer = await make_customer(client, tenant_a)
    invoice = await make_invoice(client, tenant_a, customer["id"], finalize=True)
    await act_ok(client, tenant_a, invoice["id"], "send")
    assert (await pay(client, tenant_a, invoice["id"], "1", token="tok_pending")).status_code == 201
    link = (await fetch(client, tenant_a, invoice["id"]))["hostedUrl"]
    token = link.rsplit("/", 1)[1]
    assert len(token) >= 16

    async with db.read(uuid.UUID(tenant_a.id)) as session:
        columns = select(Event.event_type, Event.entity_type, cast(Event.data, String))
        stored = (await session.execute(columns)).all()
    assert len(stored) >= 5
    for event_type, _, text in stored:
        assert token not in text, event_type
        assert "/hosted/invoices/" not in text, event_type
    # The snapshots are there, with the link left out (not merely missing).
    finalized = await all_events(client, tenant_a, {"type": "invoice.finalized"})
    async with db.read(uuid.UUID(tenant_a.id)) as session:
        data = await session.scalar(
            select(Event.data).where(Event.id == uuid.UUID(finalized[0]["id"]))
        )
    assert data is not None
    assert data["object"]["finalizedAt"] is not None
    assert data["object"]["hostedUrl"] is None
    assert finalized[0]["data"]["object"]["hostedUrl"] == link
