"""`python -m bench [--quick]` (or `make bench`): the load benchmark, end to end.

Seeds PostgreSQL, measures the machine's limits (the HTTP ceiling, pgbench of each
workload's SQL), serves the API as it is deployed (`tenvoice serve --workers 2`), drives it
with wrk, checks the webhook workload in the database, drains the outbox, fans events out
to webhook endpoints, repeats the latency-sensitive workloads on a 10k-invoice database and
on embedded SQLite, and writes bench/REPORT.md (raw results, logs and captured SQL go to
bench/results/). The stages are in bench/stage_*.py; `run` below calls them in order.
"""

import argparse
import asyncio
import logging
import os
import signal
from datetime import UTC, datetime

from bench import report
from bench.context import FULL, QUICK, RESULTS, Bench, Seeded
from bench.database import DEFAULT_ADMIN_URL
from bench.machine import machine, redis_version, versions
from bench.measure import guarded
from bench.results_model import Results
from bench.stage_api import (
    capture_requests,
    plan_big,
    stage_big,
    stage_credit_notes,
    stage_delivering,
    stage_small,
)
from bench.stage_capture import reset_statement_logging, stage_capture
from bench.stage_drain import stage_drain, stage_fanout
from bench.stage_embedded import stage_embedded
from bench.stage_endpoints import w1_endpoints
from bench.stage_limits import stage_ceiling, stage_pgbench
from bench.stage_seed import seed_database
from bench.stage_tracing import stage_tracing
from bench.wrk import ensure_wrk

DEFAULT_DATABASE = "tenvoice_bench"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"


async def run(bench: Bench, results: Results, args: argparse.Namespace) -> None:
    plan = bench.plan
    # A run killed while capturing must not leave the role logging every statement.
    await reset_statement_logging(bench.admin_url)
    if args.capture_only:
        await capture_only(bench, results)
        return
    bench.say(f"wrk: {ensure_wrk()}")
    results.machine = machine()
    results.versions = await versions(bench.admin_url)
    if bench.redis_url:
        # Asked first: a bench whose Redis is down would measure limits that are let through.
        results.versions["Redis"] = await redis_version(bench.redis_url)
        bench.say(f"rate limits through Redis {results.versions['Redis']}")
    big = await _seed_big(bench, results, reuse=args.reuse_seed)
    small = await seed_database(
        bench,
        results,
        "10k",
        bench.database + "_10k",
        tenants=plan.small_tenants,
        per_tenant=plan.small_invoices_per_tenant,
        whale_open=0,
        payments=0,
        reuse=args.reuse_seed,
    )
    await guarded(bench, results, "the HTTP ceiling", stage_ceiling(bench, results))
    async with w1_endpoints(bench, results, big) as deliveries:
        big_plan = await guarded(bench, results, "the 1M stage", stage_big(bench, results, big))
        await deliveries.count("when the API stopped (after W1 and W4)")
        if big_plan is not None:
            await guarded(bench, results, "W1+", stage_delivering(bench, results, big, deliveries))
            await guarded(bench, results, "W8", stage_credit_notes(bench, results, big, big_plan))
            await guarded(bench, results, "pgbench", stage_pgbench(bench, results, big, big_plan))
    if big_plan is not None:
        await stage_drain(bench, results, big, big_plan.drain)
    await stage_fanout(bench, results, big)
    async with w1_endpoints(bench, results, small):
        await guarded(bench, results, "the 10k stage", stage_small(bench, results, small))
        await guarded(bench, results, "tracing", stage_tracing(bench, results, small))
    await guarded(bench, results, "W6", stage_embedded(bench, results))


async def _seed_big(bench: Bench, results: Results, *, reuse: bool) -> Seeded:
    plan = bench.plan
    return await seed_database(
        bench,
        results,
        "1M",
        bench.database,
        tenants=plan.tenants,
        per_tenant=plan.invoices_per_tenant,
        whale_open=plan.whale_open,
        payments=plan.pending_payments,
        reuse=reuse,
    )


async def capture_only(bench: Bench, results: Results) -> None:
    """`--capture-only`: the SQL of each workload, on the database the last run seeded."""
    big = await _seed_big(bench, results, reuse=True)
    requests, _ = capture_requests(bench, big, await plan_big(bench, results, big))
    async with w1_endpoints(bench, results, big):
        await stage_capture(bench, results, big, requests)
    for key, c in results.captures.items():
        script = f"  (bench/pgbench/{c.script}: {c.script_statements})" if c.script else ""
        bench.say(f"  {key:<11} {c.statements} statements, {c.round_trips} round trips{script}")
    for note in results.notes:
        bench.say(f"  {note}")


async def main_async(args: argparse.Namespace) -> int:
    plan = QUICK if args.quick else FULL
    bench = Bench(plan, args.admin_url, database=args.database, redis_url=args.redis_url or None)
    results = Results(quick=plan.quick, started_at=datetime.now(UTC).isoformat(timespec="seconds"))
    task = asyncio.current_task()
    assert task is not None
    # Stop cleanly on ctrl-C or a kill, even where SIGINT arrives ignored (a background job
    # of a non-interactive shell): every started process is stopped in the finally below.
    for sig in (signal.SIGINT, signal.SIGTERM):
        asyncio.get_running_loop().add_signal_handler(sig, task.cancel)
    RESULTS.mkdir(parents=True, exist_ok=True)
    bench.say(f"tenvoice load benchmark ({'quick' if plan.quick else 'full'})")
    outcome = "done"
    try:
        await run(bench, results, args)
    except asyncio.CancelledError:
        outcome = "interrupted"
        results.notes.append("The run was interrupted: what is above is partial.")
        raise
    except Exception as exc:
        outcome = "stopped"
        results.notes.append(f"The run stopped early: {type(exc).__name__}: {exc}"[:1000])
        bench.say(f"FAILED: {type(exc).__name__}: {exc}")
        raise
    finally:
        bench.procs.stop_all()
        results.wall_s = bench.elapsed()
        written = ""
        if not args.capture_only:
            # Only a finished run replaces the committed report.
            written = report.write(results, plan, partial=outcome != "done")
        bench.say(f"{outcome} in {results.wall_s:.0f}s" + (f": {written}" if written else ""))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes, short runs (< 2 min)")
    parser.add_argument(
        "--admin-url",
        default=os.environ.get("TENVOICE_BENCH_ADMIN_URL", DEFAULT_ADMIN_URL),
        help="a PostgreSQL superuser's URL (default: $TENVOICE_BENCH_ADMIN_URL or %(default)s)",
    )
    parser.add_argument(
        "--database",
        default=os.environ.get("TENVOICE_BENCH_DATABASE", DEFAULT_DATABASE),
        help="the 1M database's name; the 10k one adds _10k (default: "
        "$TENVOICE_BENCH_DATABASE or %(default)s)",
    )
    parser.add_argument(
        "--redis-url",
        default=os.environ.get("TENVOICE_BENCH_REDIS_URL", DEFAULT_REDIS_URL),
        help="the Redis the served API's rate limits count in; empty: in each process "
        "(default: $TENVOICE_BENCH_REDIS_URL or %(default)s)",
    )
    parser.add_argument(
        "--reuse-seed",
        action="store_true",
        help="for working on the bench itself: reuse the databases the last run seeded",
    )
    parser.add_argument(
        "--capture-only",
        action="store_true",
        help="capture each workload's SQL on the last run's database (bench/results/"
        "statements-*.log) and compare it with bench/pgbench/*.sql; no report",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="          %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    try:
        return asyncio.run(main_async(args))
    except (KeyboardInterrupt, asyncio.CancelledError):
        print("interrupted: every process the bench started has been stopped", flush=True)
        return 130
