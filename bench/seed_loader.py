"""The seeder's writes: the tenants and their keys, then the batches, each planned in the
session's temporary tables and copied into the real tables in time order.
"""

import asyncio
import logging
import time
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import asyncpg

from bench.manifest import PaymentSeed, TenantSeed
from bench.seed_plan import Batch, TenantPlan, plan_batches
from bench.seed_sql import (
    CURRENCY,
    INVOICE_PREFIX,
    PLAN_CUSTOMERS,
    PLAN_INVOICES,
    READ_PENDING,
    READ_TENANTS,
    SESSION_SQL,
    STASH_WHALE,
    TAKE_WHALE_SLICE,
    WRITE_COUNTERS,
    WRITE_CUSTOMERS,
    WRITE_HOSTED_LINKS,
    WRITE_INVOICES,
    WRITE_ITEMS,
    WRITE_PAYMENT_ROUTES,
    WRITE_PAYMENTS,
)
from bench.seed_timeline import WRITE_TIMELINE
from tenvoice.invoices.links import PURPOSE as LINK_PURPOSE
from tenvoice.platform.tokens import subkey, token_hash
from tenvoice.tenants.keys import display_prefix

log = logging.getLogger("bench.seed")

CONNECTIONS = 2
DEFAULT_TAX_RATE = 110000  # 11 %, stored at scale 4 like every tax rate


@dataclass(slots=True)
class Loaded:
    """What the batches wrote that the manifest reports, and the time spent per step."""

    tenants: dict[str, TenantSeed] = field(default_factory=dict)
    invoices: int = 0
    payments: list[PaymentSeed] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)

    def add_time(self, step: str, seconds: float) -> None:
        self.seconds[step] = self.seconds.get(step, 0.0) + seconds

    def report(self, tenant_rows: list[Any], pending_rows: list[Any], keys: dict[str, str]) -> None:
        """Take in a planned batch's READ_TENANTS and READ_PENDING rows."""
        for row in tenant_rows:
            tenant_id = str(row["tenant_id"])
            self.tenants[tenant_id] = TenantSeed(
                id=tenant_id,
                api_key=keys[tenant_id],
                customer_id=str(row["customer_id"]),
                invoice_ids=list(row["sample"] or []),
                open_invoices=int(row["open_invoices"]),
            )
            self.invoices += int(row["invoices"])
        self.payments.extend(
            PaymentSeed(
                id=str(row["id"]),
                invoice_id=str(row["invoice_id"]),
                tenant_id=str(row["tenant_id"]),
                amount=int(row["amount"]),
                currency=str(row["currency"]),
            )
            for row in pending_rows
        )


async def insert_tenants(connection: Any, plans: Sequence[TenantPlan]) -> None:
    """tenants and api_keys are platform tables (no RLS); each tenant gets one live key."""
    await connection.copy_records_to_table(
        "tenants",
        columns=[
            "id",
            "name",
            "default_currency",
            "invoice_prefix",
            "default_tax_rate",
            "created_at",
            "updated_at",
        ],
        records=[
            (p.id, p.name, CURRENCY, INVOICE_PREFIX, DEFAULT_TAX_RATE, p.created_at, p.created_at)
            for p in plans
        ],
    )
    await connection.copy_records_to_table(
        "api_keys",
        columns=["tenant_id", "id", "name", "prefix", "key_hash", "created_at", "revoked_at"],
        records=[
            (
                p.id,
                p.key_id,
                "bench",
                display_prefix(p.key),
                token_hash(p.key),
                p.created_at + timedelta(milliseconds=500),
                None,
            )
            for p in plans
        ],
    )


def hmac_pads(secrets_key: str) -> tuple[bytes, bytes]:
    """HMAC-SHA256's keyed pads for the hosted-link subkey, for WRITE_HOSTED_LINKS."""
    key = subkey(secrets_key, LINK_PURPOSE).ljust(64, b"\0")
    return bytes(b ^ 0x36 for b in key), bytes(b ^ 0x5C for b in key)


# A batch: plan its tenants, then the rows that need the whole plan of a tenant (counters,
# what the manifest reports), then the writes, which may also carry a slice of the whale.
_WRITE_STEPS = (
    ("customers", WRITE_CUSTOMERS),
    ("invoices", WRITE_INVOICES),
    ("invoice_items", WRITE_ITEMS),
    ("payments", WRITE_PAYMENTS),
    ("payment_routes", WRITE_PAYMENT_ROUTES),
    ("hosted_invoice_links", WRITE_HOSTED_LINKS),
    ("events", WRITE_TIMELINE),
)


@dataclass(slots=True)
class Loader:
    """One connection's share of the batches: plan in temp tables, then write in time order.

    The whale is planned whole (its numbers and sample need all of it) but written a slice
    per later batch of this connection, mixed into those batches' time order, so its rows
    are spread over the heap like a big tenant's among many, not packed together.
    """

    connection: Any
    loaded: "Loaded"
    keys: dict[str, str]
    now: datetime
    seed: int
    sample: int
    link_pads: tuple[bytes, bytes] | None
    whale_slices: int
    slice: int = 0
    whale_left: bool = False

    async def run(self, queue: "asyncio.Queue[Batch]") -> None:
        await self.connection.execute(SESSION_SQL)
        while True:
            try:
                batch = queue.get_nowait()
            except asyncio.QueueEmpty:
                break
            started = time.perf_counter()
            async with self.connection.transaction():
                await self._plan(batch)
                await self._write(take=self.slice if self.slice < self.whale_slices else None)
            log.debug(
                "batch of %d tenants, %d invoices: %.1fs",
                len(batch.tenants),
                batch.invoices,
                time.perf_counter() - started,
            )
        if self.whale_left:
            async with self.connection.transaction():
                await self._write(take=-1)

    async def _timed(self, step: str, sql: str, *args: object) -> None:
        started = time.perf_counter()
        await self.connection.execute(sql, *args)
        self.loaded.add_time(step, time.perf_counter() - started)

    async def _plan(self, batch: "Batch") -> None:
        await self.connection.copy_records_to_table(
            "t_ten",
            columns=list(TenantPlan.PLAN_COLUMNS),
            records=[t.plan_record() for t in batch.tenants],
        )
        await self._timed("plan customers", PLAN_CUSTOMERS)
        await self._timed(
            "plan invoices",
            PLAN_INVOICES,
            self.now,
            self.seed,
            self.now.date(),
            self.sample,
        )
        await self._timed("invoice_number_counters", WRITE_COUNTERS)
        self.loaded.report(
            await self.connection.fetch(READ_TENANTS),
            await self.connection.fetch(READ_PENDING),
            self.keys,
        )
        if any(t.forced_open for t in batch.tenants):
            await self._timed("plan invoices", STASH_WHALE)
            self.whale_left = True

    async def _write(self, *, take: int | None) -> None:
        """Write t_cust and t_inv, with slice `take` of the whale (-1: the rest) added."""
        if take is not None and self.whale_left:
            await self._timed("plan invoices", TAKE_WHALE_SLICE, self.whale_slices, take)
            self.slice += 1
            self.whale_left = take >= 0 and self.slice < self.whale_slices
        for step, sql in _WRITE_STEPS:
            if step != "hosted_invoice_links":
                await self._timed(step, sql)
            elif self.link_pads is not None:
                await self._timed(step, sql, *self.link_pads)


async def together(*jobs: Coroutine[Any, Any, None]) -> None:
    """Run the jobs concurrently; the first failure cancels the rest and is raised."""
    try:
        async with asyncio.TaskGroup() as group:
            for job in jobs:
                group.create_task(job)
    except BaseExceptionGroup as failed:
        raise failed.exceptions[0] from None


async def load_batches(
    owner_url: str,
    plans: Sequence[TenantPlan],
    keys: dict[str, str],
    *,
    now: datetime,
    seed: int,
    sample: int,
    link_pads: tuple[bytes, bytes] | None,
) -> Loaded:
    """Every tenant's rows but its own and its key's, in batches on CONNECTIONS connections."""
    loaded = Loaded()
    queue: asyncio.Queue[Batch] = asyncio.Queue()
    batches = plan_batches(plans)
    for batch in batches:
        queue.put_nowait(batch)
    connections = [await asyncpg.connect(owner_url) for _ in range(CONNECTIONS)]
    try:
        loaders = [
            Loader(
                each,
                loaded,
                keys,
                now=now,
                seed=seed,
                sample=sample,
                link_pads=link_pads,
                # about as many as the batches its connection will write after it
                whale_slices=max(1, len(batches) // CONNECTIONS),
            )
            for each in connections
        ]
        await together(*(loader.run(queue) for loader in loaders))
    finally:
        for each in connections:
            await each.close()
    return loaded
