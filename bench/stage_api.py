"""The API on PostgreSQL, served as deployed (`tenvoice serve --workers 2`): the 1M stage
(the SQL capture, W2, W2b, W3, W1 and W4, then W4's check in the database), W8 (credit notes
with refunds, then their check) and the 10k stage (W2, W3 and W1 again, for latency against
size).
"""

import json
import random
import uuid
from dataclasses import dataclass

import asyncpg
import httpx

from bench import checks, credit_notes
from bench import workloads as wl
from bench.context import Bench, Seeded
from bench.manifest import PaymentSeed
from bench.measure import SignedWebhooks, fixed, guarded, measure, run_create, run_reads
from bench.procs import Service
from bench.results_model import DeepPage, Measured, Results
from bench.stage_capture import stage_capture
from bench.stage_endpoints import W1Deliveries


@dataclass
class BigPlan:
    """How the 1M database's pending payments are shared out, and W2b's page."""

    capture: list[PaymentSeed]
    w4: list[PaymentSeed]
    drain: list[PaymentSeed]
    page: int
    cursor: str | None
    credit_notes: credit_notes.CreditNotes


async def plan_big(bench: Bench, results: Results, seeded: Seeded) -> BigPlan:
    plan = bench.plan
    pending = await still_pending(seeded)
    if len(pending) < 100:
        results.notes.append(
            f"Only {len(pending)} seeded payments are still pending (a reused database?): W4 "
            "and W5 need them; run without --reuse-seed to seed afresh."
        )
    capture = _same_tenant(pending, 3)
    rest = [p for p in pending if p not in capture]
    if len(rest) - plan.drain_jobs >= 2000:
        w4, drain_payments = rest[: -plan.drain_jobs], rest[-plan.drain_jobs :]
    else:
        # Too few to keep apart: W5's webhooks go to the receiver, not the API, so reusing
        # payments there settles nothing twice.
        w4, drain_payments = rest, pending
    whale = seeded.manifest.whale
    page, cursor = plan.deep_page, None
    if whale is None:
        results.notes.append("W2b skipped: the seed has no whale tenant.")
    else:
        page = min(page, whale.open_invoices // wl.PAGE_SIZE)
        if page != plan.deep_page:
            results.notes.append(f"W2b reads page {page}: the whale has too few open invoices.")
        cursor = await deep_cursor(seeded, page)
    notes = await credit_notes.plan(
        seeded.admin_db_url, seeded.manifest.tenants, plan.warmup_s, plan.measure_s
    )
    return BigPlan(capture, w4, drain_payments, page, cursor, notes)


async def still_pending(seeded: Seeded) -> list[PaymentSeed]:
    """The manifest's pending payments that are still pending (all of them, unless a
    database is reused), shuffled so that consecutive webhooks hit different tenants."""
    payments = seeded.manifest.pending_payments
    connection = await asyncpg.connect(seeded.admin_db_url)
    try:
        # pgbench's W4 flips the status of the payments it was given back and forth; in a
        # reused database they are not the seed's pending payments any more.
        flipped = await connection.fetchval("SELECT to_regclass('bench_pg_payments')")
        rows = await connection.fetch(
            "SELECT id::text FROM payments WHERE id = ANY($1::uuid[]) AND status = 'pending'"
            + (" AND id NOT IN (SELECT payment_id FROM bench_pg_payments)" if flipped else ""),
            [p.id for p in payments],
        )
    finally:
        await connection.close()
    pending = {r["id"] for r in rows}
    kept = [p for p in payments if p.id in pending]
    random.Random(3).shuffle(kept)
    return kept


def _same_tenant(payments: list[PaymentSeed], count: int) -> list[PaymentSeed]:
    """`count` payments of one tenant (the capture's warm-ups share its tenant)."""
    by_tenant: dict[str, list[PaymentSeed]] = {}
    for payment in payments:
        by_tenant.setdefault(payment.tenant_id, []).append(payment)
        if len(by_tenant[payment.tenant_id]) == count:
            return by_tenant[payment.tenant_id]
    return payments[:count]


def capture_requests(
    bench: Bench, seeded: Seeded, big: BigPlan
) -> tuple[dict[str, list[wl.Request]], list[str]]:
    """Per workload: warm-up requests, then the one captured; and the webhook ids sent."""
    # The warm-ups use the captured request's tenant, so that what a process caches per
    # tenant (as under load, where every tenant recurs) is cached when the capture is made.
    tenant = seeded.manifest.tenants[:1]
    webhooks = wl.webhooks(big.capture, bench.webhook_secret, threads=1, repeat_share=0.0)
    requests = {
        "W1": wl.create_invoices(tenant, 3, seed=7),
        "W2": wl.list_first_pages(tenant) * 3,
        "W3": wl.get_invoices(tenant)[:3],
        "W4": webhooks.requests,
        "W4-repeat": webhooks.requests[-1:],
        "W8": big.credit_notes("capture", threads=1),
    }
    whale = seeded.manifest.whale
    if big.cursor is not None and whale is not None:
        by_cursor, by_offset = deep_queries(big.page, big.cursor)
        requests["W2b-cursor"] = wl.one(whale.api_key, by_cursor) * 3
        requests["W2b-offset"] = wl.one(whale.api_key, by_offset) * 3
    return requests, list(webhooks.payment_of)


async def stage_big(bench: Bench, results: Results, seeded: Seeded) -> BigPlan:
    """Capture, then W2, W2b, W3, W1 and W4 on the 1M database, then W4's check.

    Reads run before writes, so W2b's deep page is not shifted by W1's new invoices."""
    big = await plan_big(bench, results, seeded)
    warm = max(1, len(big.w4) * 15 // 100)
    before = await checks.snapshot(seeded.admin_db_url, big.capture + big.w4)
    requests, capture_ids = capture_requests(bench, seeded, big)
    await guarded(
        bench, results, "the SQL capture", stage_capture(bench, results, seeded, requests)
    )
    # The capture's worker is off: its refunds' jobs would wait for W1+'s worker.
    await credit_notes.retire_jobs(seeded.admin_db_url, big.credit_notes.invoice_ids("capture"))

    bench.say("serving the 1M database: tenvoice serve --workers 2, outbox worker off")
    # The worker is off: W1 and W4 measure their requests, deliveries written and not sent
    # (W1+ sends them, with the worker on, and W7 measures sending).
    service = await bench.serve("api-1M", seeded.app_url, worker="off")
    webhooks = SignedWebhooks(bench.webhook_secret, big.w4[:warm], big.w4[warm:])
    try:
        await run_reads(bench, results, service, seeded, "")
        await guarded(bench, results, "W2b", run_deep(bench, results, service, seeded, big))
        await run_create(bench, results, service, seeded.manifest.tenants, "W1", seeded.label)
        if len(big.w4) >= 20:  # each wrk thread needs lines of its own, in both phases
            await measure(
                bench,
                results,
                service,
                Measured("W4", "signed payment webhooks, 20% repeated ids", seeded.label, 16),
                "w4_webhooks.lua",
                webhooks,
            )
    finally:
        bench.procs.stop(service)
    bench.say("W4: checking the database for double-applied payments")
    results.webhooks = await guarded(
        bench,
        results,
        "W4's check",
        checks.check(
            seeded.admin_db_url, big.capture + big.w4, capture_ids + webhooks.webhook_ids(), before
        ),
    )
    if results.webhooks is not None:
        bench.say(f"  {json.dumps(results.webhooks.to_json())}")
    return big


async def stage_delivering(
    bench: Bench, results: Results, seeded: Seeded, deliveries: W1Deliveries
) -> None:
    """W1+: W1 again on the API as deployed, its in-process worker on. It first sends what
    W1 and W4 wrote (all of it, or the report says how much was left), then W1+'s own
    deliveries while W1+ runs, on the same two cores."""
    bench.say("serving the 1M database as deployed (worker on): W1's deliveries, then W1+")
    service = await bench.serve("api-1M-worker", seeded.app_url)
    try:
        sent = await deliveries.wait_sent(bench.plan.drain_timeout_s)
        await deliveries.count("sent by the API's worker before W1+" if sent else "W1+ began")
        await run_create(
            bench,
            results,
            service,
            seeded.manifest.tenants,
            "W1+",
            seeded.label,
            title="W1 with its deliveries sent meanwhile (in-process worker on)",
        )
    finally:
        bench.procs.stop(service)
    await deliveries.count("when W1+ ended")


async def stage_credit_notes(bench: Bench, results: Results, seeded: Seeded, big: BigPlan) -> None:
    """W8 on the 1M database, after W1+ so that the deliveries its events write (W1's
    endpoints take "*") are not W1+'s worker's to send; then its check in the database."""
    notes = big.credit_notes
    available = sum(len(notes.phases[p]) for p in ("warmup", "main"))
    bench.say(f"W8: credit notes with refunds on {available} paid invoices (outbox worker off)")
    if len(notes.phases["main"]) < 20:
        results.notes.append("W8 skipped: the seed has too few paid invoices left to credit.")
        return
    service = await bench.serve("api-1M-credit-notes", seeded.app_url, worker="off")
    try:
        measured = await measure(
            bench,
            results,
            service,
            Measured("W8", "credit note with its refund, paid invoice, random tenant", "1M", 16),
            "w8_credit_notes.lua",
            notes,
        )
    finally:
        bench.procs.stop(service)
    runs = [run for run in (measured.warmup, measured.wrk) if run is not None]
    results.credit_notes = await credit_notes.check(
        seeded.admin_db_url,
        notes.invoice_ids(),
        notes.invoice_ids("warmup", "main"),
        created=sum(run.counters.get("s2xx", 0) for run in runs),
        sent=sum(run.counters.get("sent", 0) for run in runs),
    )
    bench.say(f"  {json.dumps(results.credit_notes.to_json())}")


async def stage_small(bench: Bench, results: Results, seeded: Seeded) -> None:
    bench.say("serving the 10k database: W2, W3, W1 (outbox worker off)")
    service = await bench.serve("api-10k", seeded.app_url, worker="off")
    try:
        await run_reads(bench, results, service, seeded, "@10k")
        await run_create(bench, results, service, seeded.manifest.tenants, "W1@10k", "10k")
    finally:
        bench.procs.stop(service)


# -- W2b: a deep page of the whale, by cursor and by OFFSET ------------------------------


async def deep_cursor(seeded: Seeded, page: int) -> str | None:
    """Page `page`'s cursor, made from the row just before it with the API's own encoding
    (walking 999 pages through the API would take most of a minute)."""
    whale = seeded.manifest.whale
    assert whale is not None
    connection = await asyncpg.connect(seeded.admin_db_url)
    try:
        row = await connection.fetchrow(
            "SELECT created_at, id FROM invoices WHERE tenant_id = $1 AND status = 'open' "
            "ORDER BY created_at DESC, id DESC OFFSET $2 LIMIT 1",
            uuid.UUID(whale.id),
            (page - 1) * wl.PAGE_SIZE - 1,
        )
    finally:
        await connection.close()
    if row is None:
        return None
    # Anything that is not the page's cursor is caught by verify_deep_page, which walks.
    return wl.cursor_for_page(row["created_at"], row["id"]) or "-"


def deep_queries(page: int, cursor: str) -> tuple[str, str]:
    """(by cursor, by OFFSET) paths of the same page of the whale's open invoices."""
    return (
        f"{wl.LIST_OPEN}&cursor={cursor}",
        f"/api/invoices?status=open&page={page}&pageSize={wl.PAGE_SIZE}",
    )


async def verify_deep_page(
    bench: Bench, service: Service, key: str, page: int, cursor: str
) -> tuple[str, DeepPage]:
    """The cursor page must hold what the OFFSET page does; else walk there via the API."""
    async with httpx.AsyncClient(base_url=service.url, timeout=60) as client:
        by_cursor_path, by_offset_path = deep_queries(page, cursor)
        by_offset = await wl.page_ids(client, key, by_offset_path)
        try:
            matches = (
                bool(by_offset) and await wl.page_ids(client, key, by_cursor_path) == by_offset
            )
        except httpx.HTTPStatusError:
            matches = False  # a cursor the API no longer takes
        if matches:
            return cursor, DeepPage(page, "shortcut", True)
        bench.say(f"W2b: the shortcut cursor does not match page {page}; walking there")
        cursor = await wl.walk_to_page(client, key, page)
        by_cursor = await wl.page_ids(client, key, deep_queries(page, cursor)[0])
        return cursor, DeepPage(page, "walked", by_cursor == by_offset)


async def run_deep(
    bench: Bench, results: Results, service: Service, seeded: Seeded, big: BigPlan
) -> None:
    whale = seeded.manifest.whale
    if whale is None or big.cursor is None:
        return
    cursor, results.deep_page = await verify_deep_page(
        bench, service, whale.api_key, big.page, big.cursor
    )
    by_cursor, by_offset = deep_queries(big.page, cursor)
    for key, title, path in (
        ("W2b-first", "whale: first page (cursor)", wl.LIST_OPEN),
        ("W2b-cursor", f"whale: page {big.page} by cursor", by_cursor),
        ("W2b-offset", f"whale: page {big.page} by OFFSET", by_offset),
    ):
        await measure(
            bench,
            results,
            service,
            Measured(key, title, seeded.label, 16),
            "w2b_deep.lua",
            fixed(wl.one(whale.api_key, path)),
        )
