"""The SQL capture stage: one request of each workload against a one-worker server while
the service role logs its statements (see `bench.capture`), compared with the pgbench
scripts written from earlier captures.
"""

import asyncio

import asyncpg
import httpx

from bench import capture as sql_capture
from bench import limits
from bench import workloads as wl
from bench.context import APP_ROLE, RESULTS, Bench, Seeded
from bench.results_model import CaptureInfo, Results

# Captured request -> the pgbench script written from it.
PGBENCH_OF = {
    "W1": "w1_create.sql",
    "W2": "w2_list.sql",
    "W3": "w3_get.sql",
    "W4": "w4_webhook.sql",
    "W4-repeat": "w4_webhook_repeat.sql",
}


async def stage_capture(
    bench: Bench, results: Results, seeded: Seeded, requests: dict[str, list[wl.Request]]
) -> None:
    """One request of each workload (after warm-ups on the same connection) with statement
    logging on for the service role, written to bench/results/statements-<workload>.log."""
    log_path = await sql_capture.server_log(bench.admin_url)
    if log_path is None:
        results.notes.append("SQL capture skipped: PostgreSQL's log file was not found.")
        return
    bench.say(f"capturing each workload's SQL ({APP_ROLE}: log_statement=all; {log_path})")
    await _set_statement_logging(bench.admin_url, on=True)
    service = None
    try:
        service = await bench.serve("capture", seeded.app_url, workers=1, worker="off")
        tail = sql_capture.LogTail(log_path, APP_ROLE, seeded.database)
        async with httpx.AsyncClient(base_url=service.url, timeout=30) as client:
            for key, batch in requests.items():
                if not batch:
                    continue
                for number, request in enumerate(batch):
                    if number == len(batch) - 1:
                        await asyncio.sleep(0.2)
                        tail.mark()
                    response = await client.request(
                        request.method, request.path, headers=request.headers, content=request.body
                    )
                    if response.status_code >= 300:
                        results.notes.append(
                            f"capture {key}: {response.status_code} {response.text[:200]}"
                        )
                await asyncio.sleep(0.3)
                _record_capture(results, sql_capture.Capture(key, tail.read()))
    finally:
        if service is not None:
            bench.procs.stop(service)
        await _set_statement_logging(bench.admin_url, on=False)


def _record_capture(results: Results, captured: sql_capture.Capture) -> None:
    key = captured.workload
    captured.dump(RESULTS / f"statements-{key}.log")
    script = PGBENCH_OF.get(key)
    count = sql_capture.script_statements(limits.SCRIPTS / script) if script else None
    results.captures[key] = CaptureInfo.of(captured, script, count)
    if count is not None and count != len(captured.statements):
        results.notes.append(
            f"{key} now sends {len(captured.statements)} statements but bench/pgbench/{script} "
            f"has {count}: update the script from bench/results/statements-{key}.log"
        )


async def _set_statement_logging(admin_url: str, *, on: bool) -> None:
    connection = await asyncpg.connect(admin_url)
    try:
        action = "SET log_statement = 'all'" if on else "RESET log_statement"
        await connection.execute(f"ALTER ROLE {APP_ROLE} {action}")
    finally:
        await connection.close()


async def reset_statement_logging(admin_url: str) -> None:
    """The service role's statement logging off, if the role exists (see `bench.run.run`)."""
    connection = await asyncpg.connect(admin_url)
    try:
        exists = await connection.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", APP_ROLE)
        if exists:
            await connection.execute(f"ALTER ROLE {APP_ROLE} RESET log_statement")
    finally:
        await connection.close()
