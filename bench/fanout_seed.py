"""Webhook endpoints and W7's events, written as the app writes them (`webhooks/commands.py`
for endpoints, `events/log.py` for events, deliveries and dispatch jobs), but by SQL as the
superuser: W7 needs thousands of events at once, and no API call would add to what it
measures.

W7's deliveries and dispatch jobs are written due at 'infinity', so the workers start,
connect and go idle first; `make_due` then makes every one of them due in one transaction.
"""

import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from types import SimpleNamespace

import asyncpg
import orjson

# Every model mapped before invoices.schemas: with only the invoice models imported, the
# first mapper inspection (webhooks/delivery_queries.py does one at import) fails to find
# the customers table.
import tenvoice.handlers  # noqa: F401
from tenvoice.invoices.schemas import invoice_view, line_view
from tenvoice.platform.ids import uuid7
from tenvoice.webhooks.fanout import DISPATCH, dispatch_key
from tenvoice.webhooks.secrets import SecretBox, new_secret

EVENT_TYPE = "invoice.finalized"


@dataclass(frozen=True, slots=True)
class Endpoint:
    tenant_id: str
    id: str
    url: str
    secret: str  # in clear, for a receiver that verifies signatures


def new_endpoints(targets: list[tuple[str, str]]) -> list[Endpoint]:
    """An endpoint (id and secret) per (tenant id, url), not yet written."""
    return [Endpoint(tenant, str(uuid7()), url, new_secret()) for tenant, url in targets]


async def insert_endpoints(
    connection: asyncpg.Connection, secrets_key: str, endpoints: list[Endpoint]
) -> None:
    """The endpoints, enabled and subscribed to everything ("*"), each secret sealed as
    the app seals it."""
    box = SecretBox(secrets_key)
    sealed = [box.seal(e.secret, uuid.UUID(e.tenant_id), uuid.UUID(e.id)) for e in endpoints]
    tenants, ids = [e.tenant_id for e in endpoints], [e.id for e in endpoints]
    await connection.execute(
        """
        INSERT INTO webhook_endpoints (tenant_id, id, url, description, enabled_events, status,
                                       metadata, secret, created_at, updated_at,
                                       failed_attempts)
        SELECT e.tenant_id, e.id, e.url, 'bench', '["*"]', 'enabled', '{}', e.secret,
               now(), now(), 0
        FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[]) AS e(tenant_id, id, url, secret)
        """,
        tenants,
        ids,
        [e.url for e in endpoints],
        sealed,
    )
    await connection.execute(
        "INSERT INTO webhook_subscriptions (tenant_id, endpoint_id, pattern) "
        "SELECT s.tenant_id, s.endpoint_id, '*' "
        "FROM unnest($1::uuid[], $2::uuid[]) AS s(tenant_id, endpoint_id)",
        tenants,
        ids,
    )


async def retire_endpoints(connection: asyncpg.Connection, endpoint_ids: list[str]) -> None:
    """Disable the endpoints and end their dispatch jobs not yet run, so the deliveries they
    still owe wait for good and no worker measured later takes them."""
    await connection.execute(
        "UPDATE webhook_endpoints SET status = 'disabled', disabled_reason = 'bench: retired' "
        "WHERE id = ANY($1::uuid[])",
        endpoint_ids,
    )
    await connection.execute(
        "UPDATE outbox_jobs SET status = 'done', finished_at = now(), updated_at = now() "
        "WHERE kind = $1 AND status = 'pending' AND dedupe_key = ANY($2)",
        DISPATCH,
        [dispatch_key(uuid.UUID(e)) for e in endpoint_ids],
    )


async def snapshots(connection: asyncpg.Connection, tenant_id: str) -> list[dict[str, object]]:
    """`data` of an invoice.finalized event for each finalized invoice of the tenant: the
    event's own fields and the invoice as GET returns it (`object`), as the event log keeps
    it (3 lines, about 1.5 KB)."""
    tenant = uuid.UUID(tenant_id)
    invoices = await connection.fetch(
        "SELECT * FROM invoices WHERE tenant_id = $1 AND finalized_at IS NOT NULL "
        "ORDER BY id LIMIT 1000",
        tenant,
    )
    items = await connection.fetch(
        "SELECT * FROM invoice_items WHERE tenant_id = $1 AND invoice_id = ANY($2::uuid[]) "
        "ORDER BY invoice_id, position",
        tenant,
        [i["id"] for i in invoices],
    )
    currency = {i["id"]: i["currency"] for i in invoices}
    lines: dict[uuid.UUID, list[dict[str, object]]] = {}
    for item in items:
        invoice = item["invoice_id"]
        lines.setdefault(invoice, []).append(_line(item, currency[invoice]))
    today = datetime.now(UTC).date()
    return [_event_data(invoice, lines.get(invoice["id"], []), today) for invoice in invoices]


def _line(item: asyncpg.Record, currency: str) -> dict[str, object]:
    # invoice_items keeps quantity and tax rate at scale 4, the unit price at scale 6.
    return line_view(
        SimpleNamespace(
            id=item["id"],
            description=item["description"],
            quantity=Decimal(item["quantity"]).scaleb(-4),
            unit_price=Decimal(item["unit_price"]).scaleb(-6),
            tax_rate=Decimal(item["tax_rate"]).scaleb(-4),
            subtotal=item["subtotal"],
            tax=item["tax"],
            total=item["total"],
        ),
        currency,
    )


def _event_data(
    invoice: asyncpg.Record, lines: list[dict[str, object]], today: date
) -> dict[str, object]:
    row = SimpleNamespace(**dict(invoice), metadata_=orjson.loads(invoice["metadata"]))
    view = invoice_view(row, lines, today, None)
    return {
        "invoiceId": view["id"],
        "number": view["number"],
        "total": view["total"],
        "amountDue": view["amountDue"],
        "dueDate": view["dueDate"],
        "object": view,
    }


async def queue_events(
    connection: asyncpg.Connection,
    tenant_id: str,
    endpoints: list[Endpoint],
    data: list[dict[str, object]],
    events: int,
) -> tuple[list[str], list[str]]:
    """`events` invoice.finalized events of the tenant (their data taken round-robin from
    `data`), a pending delivery of each to each endpoint and a dispatch job per endpoint,
    all due at 'infinity'; returns (event ids, dispatch job ids)."""
    ids = [str(uuid7()) for _ in range(events)]  # uuid7: event order is id order
    documents = [data[n % len(data)] for n in range(events)]
    encoded = [orjson.dumps(d, option=orjson.OPT_UTC_Z).decode() for d in documents]
    async with connection.transaction():
        await connection.execute(
            """
            INSERT INTO events (tenant_id, id, event_type, entity_type, entity_id, stream_id,
                                occurred_at, request_id, actor_type, actor_id, data)
            SELECT $1, e.id, $2, 'invoice', e.entity, e.entity, now(),
                   replace(gen_random_uuid()::text, '-', ''), 'api_key', 'bench', e.data::jsonb
            FROM unnest($3::uuid[], $4::uuid[], $5::text[]) AS e(id, entity, data)
            """,
            uuid.UUID(tenant_id),
            EVENT_TYPE,
            ids,
            [d["invoiceId"] for d in documents],
            encoded,
        )
        await connection.execute(
            """
            INSERT INTO webhook_deliveries (tenant_id, id, endpoint_id, event_id, event_type,
                                            status, attempts, next_attempt_at, created_at,
                                            updated_at)
            SELECT $1, gen_random_uuid(), p.endpoint_id, e.id, $2, 'pending', 0, 'infinity',
                   now(), now()
            FROM unnest($3::uuid[]) AS e(id) CROSS JOIN unnest($4::uuid[]) AS p(endpoint_id)
            """,
            uuid.UUID(tenant_id),
            EVENT_TYPE,
            ids,
            [e.id for e in endpoints],
        )
        jobs = [str(uuid7()) for _ in endpoints]
        await connection.execute(
            """
            INSERT INTO outbox_jobs (id, tenant_id, kind, dedupe_key, payload, status, attempts,
                                     run_after, created_at, updated_at)
            SELECT j.id, $1, $2, j.dedupe_key, jsonb_build_object('endpointId', j.endpoint::text),
                   'pending', 0, 'infinity', now(), now()
            FROM unnest($3::uuid[], $4::uuid[], $5::text[]) AS j(id, endpoint, dedupe_key)
            """,
            uuid.UUID(tenant_id),
            DISPATCH,
            jobs,
            [e.id for e in endpoints],
            [dispatch_key(uuid.UUID(e.id)) for e in endpoints],
        )
    return ids, jobs


async def make_due(
    connection: asyncpg.Connection, endpoints: list[Endpoint], jobs: list[str]
) -> None:
    """Every delivery and dispatch job due now, in one transaction: the clock starts."""
    async with connection.transaction():
        await connection.execute(
            "UPDATE webhook_deliveries SET next_attempt_at = now() "
            "WHERE tenant_id = $1 AND endpoint_id = ANY($2::uuid[]) AND status = 'pending'",
            uuid.UUID(endpoints[0].tenant_id),
            [e.id for e in endpoints],
        )
        await connection.execute(
            "UPDATE outbox_jobs SET run_after = now() WHERE id = ANY($1::uuid[])", jobs
        )
