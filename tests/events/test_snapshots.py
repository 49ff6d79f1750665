"""`data.object`: the entity as its GET returned it right after the change.

An invoice's public link is a bearer secret: the log keeps its snapshots with
`hostedUrl: null` and every read (events list, one event, timeline) gives the link back, as
GET /api/invoices/{id} does.
"""

import uuid
from typing import Any

import httpx

from tenvoice.events.models import Event
from tenvoice.platform.db import Database, utcnow
from tenvoice.platform.ids import uuid7
from tests.conftest import TenantHandle, make_customer, make_invoice
from tests.events.support import read_everywhere
from tests.invoices.support import fetch


async def _write_event(
    db: Database, tenant: TenantHandle, entity_type: str, entity_id: str, data: dict[str, Any]
) -> str:
    """An event row as the log writer stores it (written here by hand, so that reading is
    tested on its own)."""
    event_id = uuid7()
    async with db.write(uuid.UUID(tenant.id)) as session:
        session.add(
            Event(
                id=event_id,
                event_type=f"{entity_type}.updated",
                entity_type=entity_type,
                entity_id=uuid.UUID(entity_id),
                stream_id=uuid.UUID(entity_id),
                occurred_at=utcnow(),
                request_id=None,
                actor_type="system",
                actor_id=None,
                data=data,
            )
        )
        await session.commit()
    return str(event_id)


async def test_reading_gives_a_finalized_invoice_its_link_back(
    client: httpx.AsyncClient, db: Database, tenant_a: TenantHandle
) -> None:
    customer = await make_customer(client, tenant_a)
    invoice = await make_invoice(client, tenant_a, customer["id"], finalize=True)
    current = await fetch(client, tenant_a, invoice["id"])
    assert current["hostedUrl"]
    stored = {**current, "hostedUrl": None}
    event_id = await _write_event(
        db, tenant_a, "invoice", invoice["id"], {"invoiceId": invoice["id"], "object": stored}
    )
    for event in await read_everywhere(client, tenant_a, event_id, invoice["id"]):
        assert event["data"] == {"invoiceId": invoice["id"], "object": current}


async def test_reading_leaves_every_other_snapshot_as_stored(
    client: httpx.AsyncClient, db: Database, tenant_a: TenantHandle
) -> None:
    customer = await make_customer(client, tenant_a)
    draft = await make_invoice(client, tenant_a, customer["id"])
    assert draft["hostedUrl"] is None
    opened = await make_invoice(client, tenant_a, customer["id"], finalize=True)
    as_stored: list[tuple[str, str, dict[str, Any]]] = [
        # A draft has no public page yet.
        ("invoice", draft["id"], {"object": draft}),
        # An event without a snapshot, and one whose object is not an invoice's.
        ("invoice", opened["id"], {"reason": "none"}),
        ("payment", opened["id"], {"object": {"finalizedAt": "2026-01-01T00:00:00Z"}}),
        ("invoice", opened["id"], {"object": None}),
    ]
    for entity_type, entity_id, data in as_stored:
        event_id = await _write_event(db, tenant_a, entity_type, entity_id, data)
        response = await client.get(f"/api/events/{event_id}", headers=tenant_a.headers)
        assert response.status_code == 200, response.text
        assert response.json()["data"] == data
