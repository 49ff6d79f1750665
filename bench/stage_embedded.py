"""The W6 stage: W1 on the embedded SQLite set-up, served as `make run` serves it (see
`bench.embedded`)."""

import asyncio

from bench import embedded
from bench.context import RESULTS, Bench
from bench.drain import start_receiver
from bench.measure import run_create
from bench.results_model import Results


async def stage_embedded(bench: Bench, results: Results) -> None:
    bench.say("W6: embedded SQLite, a fresh file, tenvoice serve (1 worker), W1 at c=8")
    url = embedded.fresh_database(RESULTS / "w6")
    try:
        await asyncio.to_thread(embedded.migrate, bench, url)
        # As `make run` serves it: one process (`--workers` defaults to 1), since two
        # processes on one SQLite file only take turns at its write lock; its rate limits
        # count in that process, as the embedded set-up has no Redis.
        service = await bench.serve("api-sqlite", url, workers=1, shared_limits=False)
    except Exception as exc:
        results.notes.append(f"W6 could not start: {type(exc).__name__}: {exc}"[:500])
        return
    receiver = None
    try:
        receiver = await start_receiver(bench, "w6-receiver", 0.0)
        tenants = await embedded.seed_tenants(
            bench, service, bench.plan.w6_tenants, f"{receiver.url}/w6"
        )
        await run_create(bench, results, service, tenants, "W6", "SQLite", connections=8)
    finally:
        bench.procs.stop(service)
        if receiver is not None:
            bench.procs.stop(receiver)
