"""The report's sections below the main table: W2b's deep page, W4's double-apply check,
W8's credit notes and their refunds, W5's drain, latency at 1M vs 10k invoices, the SQL per
request, and the run's notes.
"""

from bench.context import Plan
from bench.markdown import Table, ms, ratio, yes
from bench.results_model import Results

W8_RPS, W8_P99_MS = 300, 80

SCALE_LIMIT = 1.3  # latency at 1M within 1.3x of latency at 10k


def deep(results: Results) -> str:
    d = results.deep_page
    if d is None:
        return ""
    rows = [results.runs.get(k) for k in ("W2b-first", "W2b-cursor", "W2b-offset")]
    table = Table("whale, open invoices, 50 a page", "req/s", "p50", "p99", "p99 vs first page")
    first = rows[0].wrk if rows[0] and rows[0].wrk else None
    for m in rows:
        if m is None or m.wrk is None:
            continue
        table.add(
            m.title,
            f"{m.wrk.rps:.0f}",
            ms(m.wrk.p50_ms),
            ms(m.wrk.p99_ms),
            ratio(m.wrk.p99_ms, first.p99_ms if first else None),
        )
    quick = " (quick mode: the 100th page, not the 200th)" if d.page < 200 else ""
    how = (
        "made from the row before the page with the API's own cursor encoding"
        if d.cursor_source == "shortcut"
        else "reached by walking the pages through the API"
    )
    return (
        f"## W2b: page {d.page} by cursor and by OFFSET{quick}\n\n"
        f"The cursor was {how}; its page holds the same invoices as `page={d.page}`: "
        f"{yes(d.matches_offset)}.\n\n" + str(table)
    )


def webhooks(results: Results) -> str:
    c = results.webhooks
    w4 = results.runs.get("W4")
    if c is None:
        return ""
    counters = w4.wrk.counters if w4 and w4.wrk else {}
    lines = [
        "## W4: double-apply check (in the database, after the run)\n",
        "Read as the PostgreSQL superuser: row-level security is forced on the owner too, and "
        "the check spans every tenant. Covers every seeded payment a webhook of this run named "
        "(the capture's, the warm-up's and the measured run's).\n",
        f"Result: **{'no payment applied twice' if c.ok else 'FAILED'}**.\n",
        f"- seeded pending payments named by a webhook: {c.payments} "
        f"({c.ids_sent} distinct webhook ids prepared)",
        f"- answers during the measured run: {counters.get('processed', 0)} processed, "
        f"{counters.get('duplicate', 0)} duplicate, {counters.get('ignored', 0)} ignored, "
        f"{counters.get('s5xx', 0)} 5xx, {counters.get('s4xx', 0)} 4xx",
        f"- payments pending -> succeeded: {c.newly_succeeded}; `payment.succeeded` timeline "
        f"rows of them: {c.succeeded_rows}; payments with more than one: {c.double_timeline}",
        f"- inbox rows of our ids: {c.inbox_processed} processed (must equal the payments "
        f"settled), {c.inbox_ignored} ignored",
        f"- invoices whose `amount_paid` != sum of their succeeded payments: {c.paid_mismatch} "
        f"(before W4: {c.paid_mismatch_before}); whose `amount_paid` grew by other than "
        f"what W4 settled: {c.delta_mismatch}; whose `amount_pending` != sum of their pending "
        f"payments: {c.pending_mismatch}",
        f"- double-applied: **{c.double_applied}**\n",
    ]
    if w4 and w4.wrk and w4.wrk.counters.get("wraps", 0):
        lines.append(
            "The request list ran out and wrapped around (its repeats are all duplicates).\n"
        )
    return "\n".join(lines)


def credit_notes(results: Results) -> str:
    c = results.credit_notes
    w8 = results.runs.get("W8")
    if c is None or w8 is None or w8.wrk is None:
        return ""
    w = w8.wrk
    table = Table("req/s", "p50", "p95", "p99", "errors (4xx / 5xx / socket)", "met?")
    table.add(
        f"{w.rps:.0f} ({w.rps / W8_RPS:.2f}× the {W8_RPS} floor)",
        ms(w.p50_ms),
        ms(w.p95_ms),
        f"{ms(w.p99_ms)} ({w.p99_ms / W8_P99_MS:.2f}× the {W8_P99_MS} ms ceiling)",
        f"{w.errors} ({w.counters.get('s4xx', 0)} / {w.counters.get('s5xx', 0)} / "
        f"{w.socket_errors})",
        yes(w.rps >= W8_RPS and w.p99_ms <= W8_P99_MS and w.errors == 0 and c.ok),
    )
    statuses = ", ".join(f"{n} {status}" for status, n in sorted(c.by_status.items()))
    lines = [
        "## W8: credit notes with their refunds (the API side)\n",
        "Each request credits quantity 1 of the first item of a seeded paid invoice (paid "
        "whole by one succeeded payment) that no other request names, with `refundAmount` the "
        "note's total: all of it is refund. The API's outbox worker is off, so W8 measures the "
        "request (note, lines, refund, its `gateway.refund` job, events and their webhook "
        "deliveries), not the gateway's round trip; after the check the refund jobs are marked "
        "done, so that no worker measured later sends them.\n",
        str(table),
        f"Check in the database (as the superuser), over the {c.invoices} invoices W8 named "
        f"(the SQL capture's included): **{'passed' if c.ok else 'FAILED'}**.\n",
        f"- credit notes: {c.notes}; on the warm-up's and measured run's invoices "
        f"{c.measured_notes}, for {c.created} answers 201 seen and {c.sent} requests sent "
        f"(those in flight when wrk stopped are answered unseen); invoices with more than one: "
        f"{c.notes_twice}; notes not all refund (or lowering amount due): {c.not_all_refund}",
        f"- refunds: {c.refunds} ({statuses or 'none'}); notes without refund rows or whose "
        f"refunds do not add up to their `refundAmount`: {c.without_refunds}; refunds without "
        f"their `gateway.refund` outbox job: {c.refunds_without_job} ({c.jobs_retired} pending "
        "jobs marked done)",
        f"- invoices whose `amount_refunded` != the sum of their refunds: {c.invoice_mismatch}; "
        f"payments likewise: {c.payment_mismatch}\n",
    ]
    if w.counters.get("wraps", 0):
        lines.append("The request list ran out and wrapped around: its repeats credit again.\n")
    return "\n".join(lines)


def drain(results: Results, plan: Plan) -> str:
    d = results.drain
    if d is None:
        return ""
    quick = " (quick mode: 3,000 jobs, not 10,000)" if plan.quick else ""
    bulk = 0.99 * d.jobs / d.p99_s if d.p99_s else 0.0
    rss = " / ".join(f"{v:.0f}" for v in d.memory.peak_rss_mb.values())
    ok = d.deliveries_per_s >= 500 and d.nothing_lost
    table = Table(
        "jobs",
        "done",
        "dead",
        "drain time",
        "deliveries/s",
        "to 99% done",
        "deliveries/s to 99%",
        "attempts (retries)",
        "receiver: distinct ids / 503s",
        "worker RSS",
        "met?",
    )
    table.add(
        d.jobs,
        f"{d.done}" + (f" ({d.pending} still pending)" if d.pending else ""),
        d.dead,
        f"{d.drain_s:.1f} s" + (" (timed out)" if d.timed_out else ""),
        f"{d.deliveries_per_s:.0f}",
        f"{d.p99_s:.1f} s",
        f"{bulk:.0f}",
        f"{d.attempts} ({d.retries})",
        f"{d.accepted_ids} / {d.refused}",
        f"{rss} MB",
        yes(ok),
    )
    return (
        f"## W5: outbox drain{quick}\n\n"
        f"{d.jobs} `gateway.charge` jobs, written as the app writes them, made due at once; two "
        "`tenvoice worker` processes (`TENVOICE_GATEWAY_LATENCY_MS=0`) deliver their signed "
        "webhooks to `bench/receiver.py`, which answers 503 to a random 10%. Drain time runs "
        "from the jobs becoming due to the last one done. Target: ≥ 500 deliveries/s, "
        "nothing lost (every job done, none dead, the receiver took every id).\n\n"
        + str(table)
        + f"\nNothing lost: {yes(d.nothing_lost)}. Other jobs due when the drain began: "
        f"{d.other_due_jobs}. Retries wait the default backoff (1 s doubling, jittered), so "
        'the last few jobs set the drain time; "to 99% done" shows the bulk.\n'
    )


def fanout(results: Results, plan: Plan) -> str:
    f = results.fanout
    if f is None:
        return ""
    quick = f" (quick mode: {f.events:,} events, not 3,334)" if plan.quick else ""
    bulk = 0.99 * f.deliveries / f.p99_s if f.p99_s else 0.0
    table = Table(
        "deliveries",
        "succeeded",
        "failed",
        "drain time",
        "deliveries/s",
        "to 99% done",
        "deliveries/s to 99%",
        "attempts (retries)",
        "receiver: distinct per endpoint",
        "lost",
        "out of order",
        "worker CPU",
        "worker RSS",
        "met?",
    )
    per_endpoint = " / ".join(f"{n}" for _, n in sorted(f.per_endpoint.items()))
    table.add(
        f"{f.deliveries} ({f.events} events x 3)",
        f"{f.succeeded}" + (f" ({f.pending} still pending)" if f.pending else ""),
        f.failed,
        f"{f.drain_s:.1f} s" + (" (timed out)" if f.timed_out else ""),
        f"{f.deliveries_per_s:.0f}",
        f"{f.p99_s:.1f} s",
        f"{bulk:.0f}",
        f"{f.attempts} ({f.retries})",
        per_endpoint or "-",
        f.lost,
        f.out_of_order,
        " / ".join(f"{c:.1f}" for c in f.worker_cpu_s) + " s",
        " / ".join(f"{v:.0f}" for v in f.memory.peak_rss_mb.values()) + " MB",
        yes(f.met),
    )
    return (
        f"## W7: events fanned out to 3 webhook endpoints{quick}\n\n"
        f"{f.events} `invoice.finalized` events of one tenant (`data` with the invoice's "
        f"snapshot, 3 lines, {f.event_bytes} bytes on average), written as the event log "
        "writes them with a pending delivery to each of the tenant's 3 endpoints (enabled, "
        'subscribed to "*") and a `webhook.dispatch` job per endpoint, all made due at once. '
        "Two `tenvoice worker` processes deliver them to `bench/receiver.py` (one path per "
        "endpoint, every delivery answered 200). Drain time runs from everything due to the "
        "answer of the last delivery (the attempts the dispatcher recorded); lost = "
        "deliveries - distinct (endpoint, webhook-id) pairs the receiver took; out of order = "
        "first arrivals at an endpoint that came after a later event's. Target: ≥ 1,000 "
        "deliveries/s, 0 lost.\n\n"
        + str(table)
        + f"\nNothing lost: {yes(f.nothing_lost)}. Signatures verified (`standardwebhooks`, "
        f"one delivery in 20 per endpoint): {f.verified} of {f.sampled} sampled. Dispatch "
        f"jobs that ran: {f.dispatch_runs} (the rest were absorbed by the run holding the "
        f"endpoint). Other jobs due when the run began: {f.other_due_jobs}. Worker CPU is "
        "each worker's user + system time during the run "
        f"({_per_delivery(sum(f.worker_cpu_s), f.succeeded)} per delivery; the receiver's: "
        f"{f.receiver_cpu_s:.1f} s): one dispatcher holds an endpoint at a time and sends "
        "its first attempts one after another, so 3 endpoints keep at most 3 deliveries in "
        "flight; a worker claims half of the jobs due (rounded up), so the 3 dispatch jobs "
        "made due at once are shared 2 + 1 between the workers.\n"
    )


def _per_delivery(cpu_s: float, deliveries: int) -> str:
    return f"{1000 * cpu_s / deliveries:.2f} ms" if deliveries else "-"


def w1_deliveries(results: Results) -> str:
    if not results.w1_deliveries:
        return ""
    table = Table("database", "when", "endpoints", "deliveries written", "by status")
    for d in results.w1_deliveries:
        statuses = ", ".join(f"{n} {status}" for status, n in sorted(d.by_status.items()))
        table.add(d.database, d.moment, d.endpoints, sum(d.by_status.values()), statuses or "-")
    return (
        "## W1's webhook deliveries\n\n"
        'Every tenant W1 picks from has one enabled endpoint subscribed to "*" on a local '
        "receiver, so each created invoice also writes its 2 events' deliveries and a dispatch "
        "job, in the request's transaction (W4's settled payments and W8's credit notes write "
        "theirs too). W1 and W4 "
        "run with the API's worker off; W1+ serves the API as deployed, its in-process worker "
        "sending first what W1 and W4 wrote, then W1+'s own deliveries while it runs. "
        "W8 (after W1+), pgbench's W1 and W4 write deliveries that no worker runs. Then the "
        "endpoints are "
        "disabled and their unrun dispatch jobs marked done, so that W5 and W7 measure only "
        "their own work.\n\n" + str(table)
    )


def scale(results: Results) -> str:
    table = Table(
        "workload", "p50 10k", "p50 1M", "ratio", "p99 10k", "p99 1M", "ratio", f"≤ {SCALE_LIMIT}×?"
    )
    for key in ("W1", "W2", "W3"):
        big, small = results.runs.get(key), results.runs.get(key + "@10k")
        if not (big and small and big.wrk and small.wrk):
            continue
        r50 = big.wrk.p50_ms / small.wrk.p50_ms if small.wrk.p50_ms else 0.0
        r99 = big.wrk.p99_ms / small.wrk.p99_ms if small.wrk.p99_ms else 0.0
        table.add(
            key,
            ms(small.wrk.p50_ms),
            ms(big.wrk.p50_ms),
            f"{r50:.2f}",
            ms(small.wrk.p99_ms),
            ms(big.wrk.p99_ms),
            f"{r99:.2f}",
            yes(r50 <= SCALE_LIMIT and r99 <= SCALE_LIMIT),
        )
    if len(table.rows) == 2:
        return ""
    return "## Latency at 1M invoices vs 10k invoices\n\n" + str(table)


def tracing(results: Results) -> str:
    """What exporting spans costs: each traced workload beside its untraced run."""
    table = Table(
        "workload", "untraced req/s", "traced req/s", "ratio", "p99 untraced", "p99 traced"
    )
    for key in ("W3", "W1"):
        plain, traced = results.runs.get(key + "@10k"), results.runs.get(key + "@10k-traced")
        if not (plain and traced and plain.wrk and traced.wrk):
            continue
        ratio = traced.wrk.rps / plain.wrk.rps if plain.wrk.rps else 0.0
        table.add(
            key + "@10k",
            f"{plain.wrk.rps:.0f}",
            f"{traced.wrk.rps:.0f}",
            f"{ratio:.2f}×",
            ms(plain.wrk.p99_ms),
            ms(traced.wrk.p99_ms),
        )
    if len(table.rows) == 2:
        return ""
    taken = results.tracing or {}
    return (
        "## Tracing cost\n\n"
        "Every other workload runs with tracing off, as by default. Here W3 and W1 run again "
        "on the 10k database with `OTEL_EXPORTER_OTLP_ENDPOINT` set, their spans (request, "
        "statements) exported over OTLP/HTTP to a receiver on this machine, which took "
        f"{taken.get('spans', 0)} spans in {taken.get('exports', 0)} exports. The SDK's "
        "batch settings are its defaults, as deployed: a queue of 2,048 spans, past which it "
        "drops what the exporter has not caught up with, so under this load not every span "
        "arrives. The receiver shares the two cores with the API.\n\n" + str(table)
    )


def captures(results: Results) -> str:
    if not results.captures:
        return ""
    table = Table("request", "statements", "round trips", "pgbench script", "script statements")
    for key, c in results.captures.items():
        table.add(
            key,
            c.statements,
            c.round_trips,
            c.script or "-",
            "-" if c.script_statements is None else c.script_statements,
        )
    return (
        "## SQL per request\n\n"
        "Captured from PostgreSQL's log for one request of each workload (warm connection); "
        "round trips count a pipelined `executemany` once. The statements are in "
        "`bench/results/statements-<request>.log`.\n\n" + str(table)
    )


def notes(results: Results) -> str:
    if not results.notes:
        return ""
    return "## Notes\n\n" + "\n".join(f"- {n}" for n in results.notes) + "\n"
