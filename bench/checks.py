"""W4's after-check: was any seeded payment settled twice?

Read as a superuser, so row-level security shows every tenant's rows at once. A snapshot
taken before any webhook is sent lets the check tell what W4 changed from what the seed
left, so a seed with odd amounts cannot pass for a double charge, or hide one.
"""

from dataclasses import asdict, dataclass

import asyncpg

from bench.manifest import PaymentSeed


@dataclass
class Snapshot:
    pending: set[str]  # payments still pending
    amount_paid: dict[str, int]  # invoice id -> amount_paid
    paid_mismatch: int  # invoices whose amount_paid != sum of their succeeded payments


@dataclass
class WebhookCheck:
    payments: int  # seeded payments some W4 webhook named
    ids_sent: int  # distinct webhook ids those requests carried (at most)
    newly_succeeded: int  # payments that went pending -> succeeded during W4
    succeeded_rows: int  # payment.succeeded timeline rows of those payments
    double_timeline: int  # payments with more than one payment.succeeded row
    paid_mismatch: int  # invoices whose amount_paid != sum of their succeeded payments
    pending_mismatch: int  # invoices whose amount_pending != sum of their pending payments
    delta_mismatch: int  # invoices whose amount_paid grew by other than what W4 settled
    inbox_processed: int  # inbox rows of our ids, outcome processed
    inbox_ignored: int
    paid_mismatch_before: int  # the same invariant before W4, as the seed left it

    @property
    def double_applied(self) -> int:
        return (
            self.double_timeline
            + self.delta_mismatch
            + max(0, self.succeeded_rows - self.newly_succeeded)
        )

    @property
    def ok(self) -> bool:
        return (
            self.double_applied == 0
            and self.paid_mismatch <= self.paid_mismatch_before
            and self.pending_mismatch == 0
            and self.inbox_processed == self.newly_succeeded
            and self.inbox_ignored == 0
        )

    def to_json(self) -> dict[str, object]:
        return {**asdict(self), "double_applied": self.double_applied, "ok": self.ok}


_INVOICE_SUMS = """
SELECT i.id::text AS id, i.amount_paid, i.amount_pending,
       coalesce(sum(p.amount) FILTER (WHERE p.status = 'succeeded'), 0) AS succeeded,
       coalesce(sum(p.amount) FILTER (WHERE p.status = 'pending'), 0) AS pending
FROM invoices i
LEFT JOIN payments p ON p.tenant_id = i.tenant_id AND p.invoice_id = i.id
WHERE (i.tenant_id, i.id) IN (SELECT tid, iid FROM unnest($1::uuid[], $2::uuid[]) AS x(tid, iid))
GROUP BY i.id, i.amount_paid, i.amount_pending
"""


def _invoice_keys(payments: list[PaymentSeed]) -> tuple[list[str], list[str]]:
    pairs = sorted({(p.tenant_id, p.invoice_id) for p in payments})
    return [t for t, _ in pairs], [i for _, i in pairs]


async def snapshot(admin_db_url: str, payments: list[PaymentSeed]) -> Snapshot:
    connection = await asyncpg.connect(admin_db_url)
    try:
        pending = await connection.fetch(
            "SELECT id::text FROM payments WHERE id = ANY($1::uuid[]) AND status = 'pending'",
            [p.id for p in payments],
        )
        sums = await connection.fetch(_INVOICE_SUMS, *_invoice_keys(payments))
    finally:
        await connection.close()
    return Snapshot(
        {r["id"] for r in pending},
        {r["id"]: r["amount_paid"] for r in sums},
        sum(1 for r in sums if r["amount_paid"] != r["succeeded"]),
    )


async def check(
    admin_db_url: str,
    payments: list[PaymentSeed],
    webhook_ids: list[str],
    before: Snapshot,
) -> WebhookCheck:
    ids = [p.id for p in payments]
    connection = await asyncpg.connect(admin_db_url)
    try:
        succeeded = await connection.fetch(
            "SELECT id::text, invoice_id::text, amount FROM payments "
            "WHERE id = ANY($1::uuid[]) AND status = 'succeeded'",
            ids,
        )
        rows = await connection.fetch(
            """
            SELECT t.entity_id, count(*) AS n
            FROM payments p
            JOIN events t ON t.tenant_id = p.tenant_id AND t.stream_id = p.invoice_id
                 AND t.entity_id = p.id AND t.event_type = 'payment.succeeded'
            WHERE p.id = ANY($1::uuid[])
            GROUP BY t.entity_id
            """,
            ids,
        )
        sums = await connection.fetch(_INVOICE_SUMS, *_invoice_keys(payments))
        inbox = await connection.fetch(
            "SELECT outcome, count(*) AS n FROM inbox_messages "
            "WHERE source = 'gateway' AND message_id = ANY($1::text[]) GROUP BY outcome",
            webhook_ids,
        )
    finally:
        await connection.close()
    newly = [r for r in succeeded if r["id"] in before.pending]
    settled_by_invoice: dict[str, int] = {}
    for r in newly:
        settled_by_invoice[r["invoice_id"]] = (
            settled_by_invoice.get(r["invoice_id"], 0) + r["amount"]
        )
    outcomes = {r["outcome"]: r["n"] for r in inbox}
    return WebhookCheck(
        payments=len(ids),
        ids_sent=len(webhook_ids),
        newly_succeeded=len(newly),
        succeeded_rows=sum(r["n"] for r in rows if str(r["entity_id"]) in before.pending),
        double_timeline=sum(1 for r in rows if r["n"] > 1),
        paid_mismatch=sum(1 for r in sums if r["amount_paid"] != r["succeeded"]),
        pending_mismatch=sum(1 for r in sums if r["amount_pending"] != r["pending"]),
        delta_mismatch=sum(
            1
            for r in sums
            if r["amount_paid"] - before.amount_paid.get(r["id"], 0)
            != settled_by_invoice.get(r["id"], 0)
        ),
        inbox_processed=outcomes.get("processed", 0),
        inbox_ignored=outcomes.get("ignored", 0),
        paid_mismatch_before=before.paid_mismatch,
    )
