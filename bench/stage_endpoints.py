"""W1's tenants with a webhook endpoint each, so that W1 writes its events' deliveries.

Every tenant W1 (and pgbench's W1) may pick gets one enabled endpoint subscribed to "*",
pointing at a receiver that takes everything: each created invoice then writes, in the
request's transaction, its two events, a delivery of each and a dispatch job (one statement
on PostgreSQL). W1 itself runs with the API's outbox worker off, so that it measures the
request, not the deliveries sent on the same two cores meanwhile; W1+ then serves the API as
deployed, its worker sending first what W1 and W4 wrote, then W1+'s own deliveries while it
runs. When the stage ends the endpoints are retired (disabled, their dispatch jobs not yet
run marked done), so that nothing W1 or pgbench queued reaches the workers W5 and W7
measure; the deliveries are counted by status at each step for the report.
"""

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import asyncpg

from bench import fanout_seed
from bench.context import Bench, Seeded
from bench.drain import start_receiver
from bench.results_model import EndpointDeliveries, Results


@dataclass
class W1Deliveries:
    results: Results
    label: str
    ids: list[str]
    connection: asyncpg.Connection

    async def count(self, moment: str) -> None:
        """Records the deliveries by status at this moment."""
        rows = await self.connection.fetch(
            "SELECT status, count(*) AS n FROM webhook_deliveries "
            "WHERE endpoint_id = ANY($1::uuid[]) GROUP BY status",
            self.ids,
        )
        self.results.w1_deliveries.append(
            EndpointDeliveries(
                self.label, moment, len(self.ids), {r["status"]: r["n"] for r in rows}
            )
        )

    async def wait_sent(self, timeout_s: float) -> bool:
        """Whether every delivery was sent (none pending) within `timeout_s`."""
        deadline = time.monotonic() + timeout_s
        while True:
            pending = await self.connection.fetchval(
                "SELECT count(*) FROM webhook_deliveries "
                "WHERE endpoint_id = ANY($1::uuid[]) AND status = 'pending'",
                self.ids,
            )
            if pending == 0:
                return True
            if time.monotonic() > deadline:
                return False
            await asyncio.sleep(0.5)


@asynccontextmanager
async def w1_endpoints(
    bench: Bench, results: Results, seeded: Seeded
) -> AsyncIterator[W1Deliveries]:
    receiver = await start_receiver(bench, f"w1-receiver-{seeded.label}", 0.0)
    endpoints = fanout_seed.new_endpoints(
        [(t.id, f"{receiver.url}/w1") for t in seeded.manifest.tenants]
    )
    ids = [e.id for e in endpoints]
    connection = await asyncpg.connect(seeded.admin_db_url)
    deliveries = W1Deliveries(results, seeded.label, ids, connection)
    try:
        # A reused database keeps the last run's endpoints (and their deliveries): gone.
        await connection.execute("DELETE FROM webhook_endpoints WHERE description = 'bench'")
        await fanout_seed.insert_endpoints(connection, bench.secrets_key, endpoints)
        try:
            yield deliveries
        finally:
            await fanout_seed.retire_endpoints(connection, ids)
            await deliveries.count("when retired")
    finally:
        await connection.close()
        bench.procs.stop(receiver)
