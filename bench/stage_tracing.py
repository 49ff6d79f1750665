"""The tracing stage: W3 and W1 on the 10k database with its spans exported over OTLP/HTTP
to a local receiver (`bench.otlp_sink`), to set beside the same workloads untraced, measured
on the same database in the same run (W3@10k, W1@10k). The receiver shares the two cores
with the API, which a collector on its own host would not: the cost reported is an upper
bound.
"""

import sys

import httpx

from bench import workloads as wl
from bench.context import Bench, Seeded
from bench.measure import fixed, measure, run_create
from bench.procs import free_port, wait_ready
from bench.results_model import Measured, Results

TRACED = "@10k-traced"


async def stage_tracing(bench: Bench, results: Results, seeded: Seeded) -> None:
    bench.say("serving the 10k database with tracing on (OTLP/HTTP to a local receiver): W3, W1")
    port = free_port()
    sink = bench.procs.start(
        "otlp-sink",
        [sys.executable, "-m", "bench.otlp_sink", "--port", str(port)],
        env=bench.env(seeded.app_url),
        log_path=bench.results / "logs" / "otlp-sink.log",
        url=f"http://127.0.0.1:{port}",
    )
    try:
        await wait_ready(sink, path="/stats", log_marker=None, within=20)
        service = await bench.serve(
            "api-10k-traced", seeded.app_url, worker="off", traces_to=sink.url
        )
        tenants = seeded.manifest.tenants
        try:
            await measure(
                bench,
                results,
                service,
                Measured("W3" + TRACED, "W3 with its spans exported", seeded.label, 16),
                "w3_get.lua",
                fixed(wl.get_invoices(tenants)),
            )
            await run_create(
                bench,
                results,
                service,
                tenants,
                "W1" + TRACED,
                seeded.label,
                title="W1 with its spans exported",
            )
        finally:
            # Stopped first: its last batch of spans is exported at shutdown.
            bench.procs.stop(service)
        async with httpx.AsyncClient(timeout=5) as client:
            results.tracing = (await client.get(f"{sink.url}/stats")).json()
    finally:
        bench.procs.stop(sink)
