"""W1's tenants with a webhook endpoint each, so that W1 writes its events' deliveries.

Every tenant W1 (and pgbench's W1) may pick gets one enabled endpoint subscribed to "*",
pointing at a receiver that takes everything: each created invoice then writes, in the
request's transaction, its two events, a delivery of each and a dispatch job (one statement
on PostgreSQL), and the API's in-process outbox worker delivers them while the run goes on,
as deployed. When the stage ends the endpoints are retired (disabled, their dispatch jobs
not yet run marked done), so that nothing W1 or pgbench queued reaches the workers W5 and
W7 measure; what was delivered by then is counted for the report.
"""

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import asyncpg

from bench import fanout_seed
from bench.context import Bench, Seeded
from bench.drain import start_receiver
from bench.results_model import EndpointDeliveries, Results

Count = Callable[[str], Awaitable[None]]


@asynccontextmanager
async def w1_endpoints(bench: Bench, results: Results, seeded: Seeded) -> AsyncIterator[Count]:
    """Yields `count(moment)`, which records the deliveries by status at that moment."""
    receiver = await start_receiver(bench, f"w1-receiver-{seeded.label}", 0.0)
    endpoints = fanout_seed.new_endpoints(
        [(t.id, f"{receiver.url}/w1") for t in seeded.manifest.tenants]
    )
    ids = [e.id for e in endpoints]
    connection = await asyncpg.connect(seeded.admin_db_url)

    async def count(moment: str) -> None:
        rows = await connection.fetch(
            "SELECT status, count(*) AS n FROM webhook_deliveries "
            "WHERE endpoint_id = ANY($1::uuid[]) GROUP BY status",
            ids,
        )
        results.w1_deliveries.append(
            EndpointDeliveries(seeded.label, moment, len(ids), {r["status"]: r["n"] for r in rows})
        )

    try:
        # A reused database keeps the last run's endpoints (and their deliveries): gone.
        await connection.execute("DELETE FROM webhook_endpoints WHERE description = 'bench'")
        await fanout_seed.insert_endpoints(connection, bench.secrets_key, endpoints)
        try:
            yield count
        finally:
            await fanout_seed.retire_endpoints(connection, ids)
            await count("when retired")
    finally:
        await connection.close()
        bench.procs.stop(receiver)
