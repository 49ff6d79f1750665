"""The machine's limits, measured in the same run as the API: the HTTP ceiling (a bare FastAPI
app served as tenvoice is) and pgbench of each workload's SQL.
"""

from bench import limits
from bench.context import APP_ROLE, RESULTS, Bench, Seeded
from bench.measure import measure
from bench.results_model import Measured, Results
from bench.stage_api import BigPlan

# Workload -> its pgbench scripts with weights (W4: 80% new webhooks, 20% repeats).
PGBENCH_RUNS = {
    "W1": [("w1_create.sql", 1)],
    "W2": [("w2_list.sql", 1)],
    "W3": [("w3_get.sql", 1)],
    "W4": [("w4_webhook.sql", 8), ("w4_webhook_repeat.sql", 2)],
}


async def stage_ceiling(bench: Bench, results: Results) -> None:
    bench.say("the HTTP ceiling: bare FastAPI GET /ping, served like tenvoice (2 workers)")
    service = await bench.ceiling()
    try:
        measured = Measured("ceiling", "bare FastAPI GET /ping", "-", 16)
        results.ceiling = await measure(bench, results, service, measured, "ceiling.lua", None)
    finally:
        bench.procs.stop(service)


async def stage_pgbench(bench: Bench, results: Results, seeded: Seeded, big: BigPlan) -> None:
    """After W4's check: the W4 scripts settle the same payments again, on purpose."""
    bench.say("pgbench: each workload's SQL, -M prepared -c16 -j2, as the service role")
    variables = await limits.prepare(seeded.admin_db_url, APP_ROLE, seeded.manifest, big.w4)
    for key, scripts in PGBENCH_RUNS.items():
        if key == "W4" and not big.w4:
            continue
        outcome = await limits.run(
            scripts,
            seeded.app_url,
            seconds=bench.plan.pgbench_s,
            variables=variables,
            log=RESULTS / "pgbench" / f"{key}.txt",
        )
        results.pgbench[key] = outcome
        problem = f"  ({outcome.error})" if outcome.error else ""
        bench.say(f"  {key:<11} {outcome.tps:8.1f} tps  {outcome.latency_ms:.2f} ms{problem}")
        if outcome.error:
            results.notes.append(f"pgbench {key}: {outcome.error}")
