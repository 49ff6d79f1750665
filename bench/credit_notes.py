"""W8: a credit note with a refund on paid invoices, and its check in the database.

The seed's paid invoices were paid whole by one succeeded payment (`bench.seed_sql`,
WRITE_PAYMENTS, with the simulated gateway's charge reference), so each can take a credit
note whose post-payment part is all refund. Each request credits quantity 1 of the first
item of a paid invoice no other request names, with `refundAmount` the note's total, priced
here by the app's own line rule. The API's outbox worker is off: W8 measures the request
(the note, its refund, the refund's gateway job, events); the check then counts the jobs
and marks them done, so no worker measured later sends them.
"""

import random
import uuid
from dataclasses import asdict, dataclass, field
from decimal import Decimal

import asyncpg
import orjson

from bench import workloads as wl
from bench.manifest import TenantSeed
from tenvoice.gateway.simulator import REFUND
from tenvoice.invoices.amounts import Line, price_line
from tenvoice.platform.money import format_minor

CURRENCY = "USD"
# Lines prepared per second of a phase: above what two cores can take, so wrk does not wrap.
LINES_PER_SECOND = 600

_PAID = """
SELECT i.tenant_id::text AS tenant_id, i.id::text AS invoice_id, it.id::text AS item_id,
       it.unit_price, it.tax_rate
FROM invoices i
JOIN LATERAL (
    SELECT id, unit_price, tax_rate FROM invoice_items
    WHERE tenant_id = i.tenant_id AND invoice_id = i.id ORDER BY position LIMIT 1
) it ON true
WHERE i.tenant_id = ANY($1::uuid[]) AND i.status = 'paid' AND i.currency = $3
  AND i.credited_amount = 0 AND i.amount_refunded = 0
  -- as the seed or the API left it (pgbench's W4 settles payments again, without the app)
  AND i.amount_paid = i.total AND i.amount_pending = 0
  AND NOT EXISTS (SELECT 1 FROM credit_notes c
                  WHERE c.tenant_id = i.tenant_id AND c.invoice_id = i.id)
  AND EXISTS (SELECT 1 FROM payments p
              WHERE p.tenant_id = i.tenant_id AND p.invoice_id = i.id
                AND p.status = 'succeeded' AND p.amount - p.amount_refunded >= i.total)
ORDER BY hashtext(i.id::text)
LIMIT $2
"""


@dataclass(frozen=True, slots=True)
class PaidInvoice:
    tenant_id: str
    invoice_id: str
    item_id: str
    unit_price: int  # as stored: ScaledDecimal(6)
    tax_rate: int  # ScaledDecimal(4), a percentage

    def refund(self) -> int:
        """The note's total in minor units: quantity 1 of the item, priced as the app does."""
        unit_price, tax_rate = Decimal(self.unit_price).scaleb(-6), Decimal(self.tax_rate)
        subtotal, tax = price_line(Line("", Decimal(1), unit_price, tax_rate.scaleb(-4)), CURRENCY)
        return subtotal + tax


async def paid_invoices(
    admin_db_url: str, tenants: list[TenantSeed], count: int
) -> list[PaidInvoice]:
    """Up to `count` paid invoices of `tenants` that nothing has credited or refunded yet,
    in a pseudo-random order (consecutive requests hit different tenants)."""
    connection = await asyncpg.connect(admin_db_url)
    try:
        rows = await connection.fetch(_PAID, [t.id for t in tenants], count, CURRENCY)
    finally:
        await connection.close()
    return [PaidInvoice(**dict(r)) for r in rows]


def credit_note(invoice: PaidInvoice, key: str, thread: int | None) -> wl.Request:
    body = {
        "invoiceId": invoice.invoice_id,
        "lines": [{"invoiceItemId": invoice.item_id, "quantity": "1"}],
        "reason": "product_unsatisfactory",
        "refundAmount": format_minor(invoice.refund(), CURRENCY),
    }
    return wl.Request(
        "POST",
        "/api/credit-notes",
        {**wl.bearer(key), **wl.JSON},
        orjson.dumps(body).decode(),
        thread=thread,
    )


class CreditNotes:
    """W8's requests per phase ("capture", "warmup", "main"), each on invoices of its own;
    dealt to wrk's threads so that no invoice is sent twice (each thread sends its own lines
    in order, and the report counts any wrap)."""

    def __init__(
        self, tenants: list[TenantSeed], invoices: list[PaidInvoice], sizes: dict[str, int]
    ):
        self.keys = {t.id: t.api_key for t in tenants}
        self.phases: dict[str, list[PaidInvoice]] = {}
        first = tenants[0].id if tenants else ""
        # The capture's warm-ups share its tenant, as the other workloads' do.
        capture = [i for i in invoices if i.tenant_id == first][: sizes.pop("capture", 0)]
        rest = [i for i in invoices if i not in capture]
        self.phases["capture"] = capture
        for phase, size in sizes.items():
            self.phases[phase], rest = rest[:size], rest[size:]

    def __call__(self, phase: str, threads: int = 2) -> list[wl.Request]:
        invoices = self.phases.get(phase, [])
        return [
            credit_note(i, self.keys[i.tenant_id], n % threads if threads > 1 else None)
            for n, i in enumerate(invoices)
        ]

    def invoice_ids(self, *phases: str) -> list[str]:
        """Those of `phases`, or of every phase."""
        return [
            i.invoice_id
            for name, invoices in self.phases.items()
            if not phases or name in phases
            for i in invoices
        ]


async def plan(
    admin_db_url: str, tenants: list[TenantSeed], warmup_s: float, measure_s: float
) -> CreditNotes:
    sizes = {
        "capture": 4,
        "warmup": round(warmup_s * LINES_PER_SECOND),
        "main": round(measure_s * LINES_PER_SECOND),
    }
    found = await paid_invoices(admin_db_url, tenants, sum(sizes.values()))
    random.Random(8).shuffle(found)
    return CreditNotes(tenants, found, sizes)


# -- the check ---------------------------------------------------------------------------


@dataclass
class CreditNoteCheck:
    invoices: int  # paid invoices some W8 request named (capture, warm-up, measured run)
    created: int  # 201 answers wrk counted in the warm-up and the measured run
    sent: int  # requests wrk sent then: those still in flight as it stopped are answered unseen
    notes: int  # credit notes on those invoices
    measured_notes: int  # of them, on the invoices of the warm-up and the measured run
    notes_twice: int  # invoices with more than one note
    not_all_refund: int  # notes whose refund is not their whole total, or that lowered amount due
    without_refunds: int  # notes with no refund row, or whose refunds do not add up to it
    refunds: int
    refunds_without_job: int  # refunds with no gateway.refund job in the outbox
    invoice_mismatch: int  # invoices whose amount_refunded != the sum of their refunds
    payment_mismatch: int  # payments whose amount_refunded != the sum of their refunds
    jobs_retired: int = 0  # the pending gateway.refund jobs marked done after the check
    by_status: dict[str, int] = field(default_factory=dict)  # refunds by status

    @property
    def ok(self) -> bool:
        return (
            self.created <= self.measured_notes <= self.sent
            and self.notes_twice == 0
            and self.not_all_refund == 0
            and self.without_refunds == 0
            and self.refunds_without_job == 0
            and self.invoice_mismatch == 0
            and self.payment_mismatch == 0
        )

    def to_json(self) -> dict[str, object]:
        return {**asdict(self), "ok": self.ok}


# Refunds count unless failed: a failed refund gives its amount back to payment and invoice.
_CHECK = """
WITH inv AS (
    SELECT i.* FROM invoices i WHERE i.id = ANY($1::uuid[])
), notes AS (
    SELECT c.*, (SELECT coalesce(sum(r.amount), 0) FROM refunds r
                 WHERE r.tenant_id = c.tenant_id AND r.credit_note_id = c.id
                   AND r.status <> 'failed') AS refunded,
                (SELECT count(*) FROM refunds r
                 WHERE r.tenant_id = c.tenant_id AND r.credit_note_id = c.id) AS refund_rows
    FROM credit_notes c JOIN inv ON inv.tenant_id = c.tenant_id AND inv.id = c.invoice_id
), per_invoice AS (
    SELECT inv.id, inv.amount_refunded,
           (SELECT coalesce(sum(r.amount), 0) FROM refunds r
            WHERE r.tenant_id = inv.tenant_id AND r.invoice_id = inv.id
              AND r.status <> 'failed') AS refunded,
           (SELECT count(*) FROM credit_notes c
            WHERE c.tenant_id = inv.tenant_id AND c.invoice_id = inv.id) AS notes
    FROM inv
), per_payment AS (
    SELECT p.amount_refunded,
           (SELECT coalesce(sum(r.amount), 0) FROM refunds r
            WHERE r.tenant_id = p.tenant_id AND r.payment_id = p.id
              AND r.status <> 'failed') AS refunded
    FROM payments p JOIN inv ON inv.tenant_id = p.tenant_id AND p.invoice_id = inv.id
)
SELECT
    (SELECT count(*) FROM notes) AS notes,
    (SELECT count(*) FROM notes WHERE invoice_id = ANY($2::uuid[])) AS measured_notes,
    (SELECT count(*) FROM per_invoice WHERE notes > 1) AS notes_twice,
    (SELECT count(*) FROM notes WHERE refund_amount <> total OR pre_payment_amount <> 0)
        AS not_all_refund,
    (SELECT count(*) FROM notes WHERE refund_rows = 0 OR refunded <> refund_amount)
        AS without_refunds,
    (SELECT count(*) FROM per_invoice WHERE amount_refunded <> refunded) AS invoice_mismatch,
    (SELECT count(*) FROM per_payment WHERE amount_refunded <> refunded) AS payment_mismatch
"""

# One pass over the outbox (its payload is not indexed), joined by hash.
_REFUNDS = """
SELECT r.id::text AS id, r.status, j.refund_id IS NOT NULL AS has_job
FROM refunds r
LEFT JOIN (SELECT DISTINCT payload->>'refundId' AS refund_id FROM outbox_jobs WHERE kind = $2)
    AS j ON j.refund_id = r.id::text
WHERE r.invoice_id = ANY($1::uuid[])
"""


async def check(
    admin_db_url: str, invoice_ids: list[str], measured_ids: list[str], created: int, sent: int
) -> CreditNoteCheck:
    """Read as the superuser (row-level security would show one tenant at a time); then the
    refunds' pending gateway jobs are marked done (see the module docstring). `created`: the
    201 answers to the requests that named `measured_ids` (the capture's are not counted)."""
    ids = [uuid.UUID(i) for i in invoice_ids]
    connection = await asyncpg.connect(admin_db_url)
    try:
        row = await connection.fetchrow(_CHECK, ids, [uuid.UUID(i) for i in measured_ids])
        refunds = await connection.fetch(_REFUNDS, ids, REFUND)
        retired = await _retire(connection, ids)
    finally:
        await connection.close()
    assert row is not None
    by_status: dict[str, int] = {}
    for r in refunds:
        by_status[r["status"]] = by_status.get(r["status"], 0) + 1
    return CreditNoteCheck(
        invoices=len(ids),
        created=created,
        sent=sent,
        refunds=len(refunds),
        refunds_without_job=sum(1 for r in refunds if not r["has_job"]),
        jobs_retired=retired,
        by_status=by_status,
        **{k: int(v) for k, v in row.items()},
    )


async def retire_jobs(admin_db_url: str, invoice_ids: list[str]) -> int:
    """The pending gateway.refund jobs of these invoices' refunds, marked done: a worker
    measured later (W1+, W5, W7) must not spend its time on them."""
    connection = await asyncpg.connect(admin_db_url)
    try:
        return await _retire(connection, [uuid.UUID(i) for i in invoice_ids])
    finally:
        await connection.close()


async def _retire(connection: asyncpg.Connection, invoice_ids: list[uuid.UUID]) -> int:
    status = await connection.execute(
        "UPDATE outbox_jobs SET status = 'done', finished_at = now(), updated_at = now() "
        "WHERE kind = $1 AND status = 'pending' AND payload->>'refundId' IN "
        "(SELECT id::text FROM refunds WHERE invoice_id = ANY($2::uuid[]))",
        REFUND,
        invoice_ids,
    )
    return int(status.split()[-1])
