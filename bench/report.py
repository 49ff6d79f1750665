"""bench/REPORT.md (and bench/results/results.json) from what a run measured: the header,
the machine's limits and the main table here, the sections below it in
`bench.report_sections`.
"""

import json

from bench import report_sections as sections
from bench.context import RESULTS, Plan
from bench.markdown import Table, ms, ratio, yes
from bench.procs import REPO
from bench.report_sections import W8_P99_MS, W8_RPS
from bench.results_model import Measured, Results

REPORT = REPO / "bench" / "REPORT.md"
RSS_LIMIT_MB = 150.0
DEEP_LIMIT = 1.2  # W2b: the deep page's p99 within 1.2x of the first page's


def write(results: Results, plan: Plan, *, partial: bool = False) -> str:
    """results.json, and REPORT.md (of a run that did not finish: results/REPORT-partial.md);
    returns the report's path, relative to the repository."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "results.json").write_text(json.dumps(results.to_json(), indent=2, default=str))
    path = RESULTS / "REPORT-partial.md" if partial else REPORT
    path.write_text(render(results, plan))
    return str(path.relative_to(REPO))


def render(results: Results, plan: Plan) -> str:
    parts = [_header(results, plan), _limits(results), _main_table(results, plan)]
    parts += [
        sections.deep(results),
        sections.webhooks(results),
        sections.credit_notes(results),
        sections.drain(results, plan),
        sections.fanout(results, plan),
        sections.w1_deliveries(results),
        sections.scale(results),
        sections.tracing(results),
    ]
    parts += [sections.captures(results), sections.notes(results)]
    budget = 120 if plan.quick else 600
    parts.append(
        f"Total wall time of the run: **{results.wall_s:.0f} s**, seeding included "
        f"(budget {budget} s: {yes(results.wall_s < budget)}).\n"
    )
    return "\n".join(p for p in parts if p)


def _header(results: Results, plan: Plan) -> str:
    mode = "quick (`--quick`)" if plan.quick else "full"
    lines = [
        "# tenvoice load benchmark\n",
        f"Run {results.started_at}, {mode} mode; written by `make bench` (`python -m bench`), "
        "overwritten by each run. Raw results, wrk and pgbench output, server logs and the "
        "captured SQL are in `bench/results/`.\n",
        "**Machine:** " + ", ".join(f"{k} {v}" for k, v in results.machine.items()) + "  ",
        "**Versions:** " + ", ".join(f"{k} {v}" for k, v in results.versions.items()) + "\n",
    ]
    seeds = Table("database", "tenants", "invoices", "whale open", "pending payments", "seeded in")
    for s in results.seeded:
        seeded_in = f"{s.seconds:.0f} s" if s.seconds else "reused"
        seeds.add(
            f"{s.label} (`{s.database}`)",
            s.tenants,
            s.invoices,
            s.whale_open,
            s.pending_payments,
            seeded_in,
        )
    total = sum(s.seconds for s in results.seeded)
    lines += ["## Seeded data\n", str(seeds)]
    if plan.quick:
        lines.append(
            "Quick mode: the database labelled 1M holds 100 tenants x 100 invoices and the "
            "whale; the 10k database is the same as in a full run.\n"
        )
    lines += [
        f"Seeding took {total:.0f} s in all (must be < 300 s: {yes(total < 300)}).\n",
        f"Each workload: {plan.warmup_s:.0f} s warm-up (discarded), then {plan.measure_s:.0f} s "
        "measured with `wrk -t2 -c16 --latency` against `tenvoice serve --workers 2` "
        "with its outbox worker off (deliveries are written, not sent: W1+ and W7 send them); "
        "W1+ against the same server as deployed, its in-process worker on; W6 with `-c8` "
        "against `tenvoice serve` "
        "with its default single worker, as `make run` serves embedded SQLite (a second "
        "process would only wait for the same file's write lock). RSS of each API worker "
        "sampled every 100 ms from /proc.\n",
        "Everything is on as deployed: events, metrics, and rate limits on every request "
        + (
            "counted in Redis (one round trip each)"
            if "Redis" in results.versions
            else "counted in each process (no Redis)"
        )
        + " (W6: in its process, as the embedded set-up has no Redis), with budgets far "
        "above what wrk sends so that none is refused; tracing is off except in the "
        "tracing stage.\n",
    ]
    return "\n".join(lines)


def _limits(results: Results) -> str:
    table = Table("limit", "throughput", "latency", "notes")
    c = results.ceiling
    if c is not None and c.wrk is not None:
        table.add(
            "HTTP ceiling: bare FastAPI `GET /ping`, uvicorn 2 workers",
            f"{c.wrk.rps:.0f} req/s",
            f"p50 {ms(c.wrk.p50_ms)}, p99 {ms(c.wrk.p99_ms)}",
            f"errors {c.wrk.errors}",
        )
    elif c is not None:
        table.add("HTTP ceiling", "failed", "-", c.error or "")
    for key, p in results.pgbench.items():
        table.add(
            f"pgbench {key}: `{p.script}`",
            f"{p.tps:.0f} tps",
            f"avg {p.latency_ms:.2f} ms",
            p.error or f"{p.transactions} transactions, {p.failed} failed",
        )
    return "## The machine's limits, measured in this run\n\n" + str(table)


ORDER = ["W1", "W1+", "W2", "W2b-first", "W2b-cursor", "W2b-offset", "W3", "W4", "W8", "W6"]


def _ordered(results: Results) -> list[Measured]:
    def rank(m: Measured) -> tuple[int, int, str]:
        base, _, db = m.key.partition("@")
        return (1 if db else 0, ORDER.index(base) if base in ORDER else len(ORDER), m.key)

    return sorted(results.runs.values(), key=rank)


def _target(results: Results, m: Measured, plan: Plan) -> tuple[str, bool | None]:
    """The issue's target for this workload, and whether it was met."""
    w = m.wrk
    if w is None:
        return "-", False
    pg = results.pgbench.get(m.key)
    rss = _rss_ok(m)
    if m.key == "W1":
        ok = w.rps >= 500 and w.p99_ms <= 60 and pg is not None and w.rps >= 0.25 * pg.tps
        return "≥ 500 req/s, p99 ≤ 60 ms, ≥ 0.25× pgbench", ok and rss
    if m.key == "W2":
        return "≥ 800 req/s, p99 ≤ 40 ms", w.rps >= 800 and w.p99_ms <= 40 and rss
    if m.key == "W2b-cursor":
        first = results.runs.get("W2b-first")
        if first is None or first.wrk is None:
            return f"p99 ≤ {DEEP_LIMIT}× first page", None
        return (
            f"p99 ≤ {DEEP_LIMIT}× first page ({ms(first.wrk.p99_ms * DEEP_LIMIT)})",
            w.p99_ms <= DEEP_LIMIT * first.wrk.p99_ms and rss,
        )
    if m.key == "W3":
        return "≥ 1,500 req/s", w.rps >= 1500 and rss
    if m.key == "W4":
        check = results.webhooks
        double_ok = check is not None and check.ok
        fives = w.counters.get("s5xx", 0)
        return (
            "≥ 500 req/s, 0 double-applied, 0 5xx",
            w.rps >= 500 and double_ok and fives == 0 and rss,
        )
    if m.key == "W8":
        notes = results.credit_notes
        return (
            f"≥ {W8_RPS} req/s, p99 ≤ {W8_P99_MS} ms, 0 errors, every note refunded",
            w.rps >= W8_RPS
            and w.p99_ms <= W8_P99_MS
            and w.errors == 0
            and notes is not None
            and notes.ok
            and rss,
        )
    if m.key == "W6":
        return "0 errors, ≥ 200 req/s", w.errors == 0 and w.rps >= 200 and rss
    return "RSS ≤ 150 MB", rss


def _main_table(results: Results, plan: Plan) -> str:
    ceiling = results.ceiling.wrk.rps if results.ceiling and results.ceiling.wrk else None
    table = Table(
        "workload",
        "db",
        "req/s",
        "p50",
        "p95",
        "p99",
        "errors",
        "peak RSS per worker",
        "vs ceiling",
        "vs pgbench",
        "target",
        "met?",
    )
    drain_shown = False
    for m in _ordered(results):
        if not drain_shown and (m.key == "W6" or "@" in m.key):
            _drain_row(table, results)
            _fanout_row(table, results)
            drain_shown = True
        _workload_row(table, results, m, plan, ceiling)
    if not drain_shown:
        _drain_row(table, results)
        _fanout_row(table, results)
    rss_all = [m for m in results.runs.values() if m.memory.peak_rss_mb]
    peak = max((m.memory.max_peak_mb for m in rss_all), default=0.0)
    hwm = max((v for m in rss_all for v in m.memory.hwm_mb.values()), default=0.0)
    return (
        "## Results\n\n"
        "Errors are non-2xx answers plus socket errors (connect, read, write, timeout at 5 s). "
        '"vs ceiling" is the workload\'s req/s over the HTTP ceiling\'s; "vs pgbench" over '
        'pgbench\'s tps for the same SQL. "met?" includes peak RSS per worker ≤ 150 MB.\n\n'
        + str(table)
        + f"\nPeak RSS of any API worker during any measured run: {peak:.0f} MB "
        f"(≤ {RSS_LIMIT_MB:.0f} MB: {yes(bool(rss_all) and peak <= RSS_LIMIT_MB)}); highest "
        f"VmHWM (lifetime peak, warm-ups and start-up included): {hwm:.0f} MB.\n"
    )


def _workload_row(
    table: Table, results: Results, m: Measured, plan: Plan, ceiling: float | None
) -> None:
    if m.wrk is None:
        table.add(
            m.key + " " + m.title,
            m.database,
            "failed",
            "",
            "",
            "",
            "",
            "",
            "",
            "",
            "",
            m.error or "",
        )
        return
    w = m.wrk
    pg = results.pgbench.get(m.key)
    target, ok = _target(results, m, plan)
    errors = f"{w.errors}"
    if w.errors:
        errors += f" ({w.non_2xx} non-2xx, {w.socket_errors} socket)"
    if m.key in ("W4", "W8"):
        errors += f"; 5xx: {w.counters.get('s5xx', 0)}"
    table.add(
        f"{m.key} {m.title}{_setup(m)}",
        m.database,
        f"{w.rps:.0f}",
        ms(w.p50_ms),
        ms(w.p95_ms),
        ms(w.p99_ms),
        errors,
        _rss(m),
        ratio(w.rps, ceiling),
        ratio(w.rps, pg.tps if pg else None),
        target,
        yes(ok),
    )


def _setup(m: Measured) -> str:
    """What differs from the usual set-up (16 connections, 2 workers), as " (c=8, 1 worker)"."""
    differs = [f"c={m.connections}"] if m.connections != 16 else []
    if m.workers and m.workers != 2:
        differs.append(f"{m.workers} worker" + ("s" if m.workers > 1 else ""))
    return f" ({', '.join(differs)})" if differs else ""


def _drain_row(table: Table, results: Results) -> None:
    d = results.drain
    if d is None:
        return
    table.add(
        "W5 worker drain (2 `tenvoice worker`), deliveries/s",
        "1M",
        f"{d.deliveries_per_s:.0f}",
        "-",
        "-",
        "-",
        f"{d.dead} dead, {d.jobs - d.accepted_ids} lost",
        " / ".join(f"{v:.0f}" for v in d.memory.peak_rss_mb.values()) + " MB",
        "-",
        "-",
        "≥ 500 deliveries/s, nothing lost",
        yes(d.deliveries_per_s >= 500 and d.nothing_lost),
    )


def _fanout_row(table: Table, results: Results) -> None:
    f = results.fanout
    if f is None:
        return
    table.add(
        "W7 events to 3 endpoints (2 `tenvoice worker`), deliveries/s",
        "1M",
        f"{f.deliveries_per_s:.0f}",
        "-",
        "-",
        f"{f.p99_s:.1f} s to 99%",
        f"{f.failed} failed, {f.lost} lost, {f.out_of_order} out of order",
        " / ".join(f"{v:.0f}" for v in f.memory.peak_rss_mb.values()) + " MB",
        "-",
        "-",
        "≥ 1,000 deliveries/s, 0 lost",
        yes(f.met),
    )


def _rss(m: Measured) -> str:
    peaks = list(m.memory.peak_rss_mb.values())
    return " / ".join(f"{v:.0f}" for v in peaks) + " MB" if peaks else "-"


def _rss_ok(m: Measured) -> bool:
    return bool(m.memory.peak_rss_mb) and m.memory.max_peak_mb <= RSS_LIMIT_MB
