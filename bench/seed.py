"""Bulk seeder of the load benchmark: a fresh PostgreSQL database shaped as the app leaves it.

`prepare_database` (`bench.database`) makes the roles and a freshly migrated database;
`seed` fills it with tenants, keys, customers, invoices (3 items each, mixed statuses, a year
of history), their timelines, succeeded payments of the paid ones and pending payments for
the webhook workload, and returns the `Manifest` the runner reads. Run as
`python -m bench.seed --help`. The tenants and batches are planned in `bench.seed_plan`,
written by `bench.seed_loader`, with the SQL of `bench.seed_sql` and `bench.seed_timeline`.

What a tenant gets (all in USD, tax rates 0/10/11 %, integral quantities, whole cents):
one live API key (`generate_key`, only its `token_hash` stored), 20 customers, and its
invoices: about 10 % draft, 45 % open, 35 % paid, 5 % void, 5 % uncollectible, issued over
the last year (up to two days ago), due 0-30 days after issue. Non-drafts carry gap-free
numbers `INV-{year of finalize}-{NNNNN}` in finalize order, with matching
`invoice_number_counters` rows, so the API's next finalize continues the sequence. Each
invoice has the timeline rows the app would have written: invoice.created, .finalized,
.overdue (by the worker, when it was still open the day after its due date), .voided,
.marked_uncollectible, and for a paid one payment.attempted, payment.succeeded and
invoice.paid with its succeeded payment (gateway reference as the simulator makes it) and
payment route. Pending payments (payment.attempted, route, `amount_pending` reserved) cover
the whole amount due of some open invoices of the ordinary tenants. The whale has
`whale_open` open invoices and 15 % as many of the other statuses. Not written: outbox jobs
(the runner plays the gateway; overdue checks already ran), inbox rows of past webhooks,
idempotency keys, `sent_at`/invoice.sent, and, unless asked, public invoice links.

How it stays fast: every row is generated server-side by `INSERT ... SELECT` over
`generate_series`, with deterministic pseudo-random values (`hashint8extended` of the tenant
and invoice number, salted by `seed`), in batches of tenants on two connections. A batch is
first planned in session-local temporary tables (no WAL), then copied into the real tables in
time order, so one tenant's rows are spread over the heap as they are when tenants work side
by side, while each batch only touches its own tenants' stretch of every index.

Row-level security: the tenant-owned tables have RLS *forced*, which binds their owner too,
and a batch holds many tenants. For the load only, `seed` turns FORCE off (`ALTER TABLE ...
NO FORCE ROW LEVEL SECURITY`, owner privilege; ENABLE stays, so the app role is bound
throughout) and turns it back on in a `finally`, then checks every table has it again. The
schema is otherwise untouched: normal logged tables with all their indexes and foreign keys.
"""

import argparse
import asyncio
import logging
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import asyncpg

from bench.database import DEFAULT_ADMIN_URL, prepare_database, quote_ident
from bench.manifest import Manifest
from bench.seed_loader import (
    CONNECTIONS,
    Loaded,
    hmac_pads,
    insert_tenants,
    load_batches,
    together,
)
from bench.seed_plan import TenantPlan, plan_tenants

log = logging.getLogger("bench.seed")

RESULTS = Path(__file__).resolve().parent / "results"
# Tables with row-level security (migrations: enable_tenant_rls).
TENANT_TABLES = (
    "customers",
    "invoices",
    "invoice_items",
    "invoice_number_counters",
    "events",
    "payments",
)


# -- seeding --------------------------------------------------------------------------------


async def seed(
    owner_url: str,
    *,
    tenants: int,
    invoices_per_tenant: int,
    whale_open: int,
    pending_payments: int,
    invoice_sample: int = 20,
    seed: int = 1,
    hosted_links: str | None = None,
    vacuum: bool = True,
) -> Manifest:
    """Fill a freshly migrated database (see the module docstring); returns its manifest.

    `hosted_links`: the secrets key the service will run with, to give every finalized
    invoice the hosted_invoice_links row of its link, as finalize does; unset by default,
    since nothing in the schema needs it and the benchmark does not read hosted pages.
    `vacuum`: VACUUM (ANALYZE) at the end, else ANALYZE only.
    """
    now = datetime.now(UTC)
    started = time.perf_counter()
    plans = plan_tenants(now, tenants, invoices_per_tenant, whale_open, pending_payments)
    connection = await asyncpg.connect(owner_url)
    try:
        await _create_tenants(connection, plans, started)
        loaded = await _load(
            connection,
            owner_url,
            plans,
            now=now,
            seed=seed,
            sample=invoice_sample,
            hosted_links=hosted_links,
        )
    finally:
        await connection.close()

    if len(loaded.payments) < pending_payments:
        log.warning(
            "only %d pending payments: the tenants have too few open invoices for %d",
            len(loaded.payments),
            pending_payments,
        )
    phase = time.perf_counter()
    await _vacuum(owner_url, full_vacuum=vacuum)
    log.info("%s: %.1fs", "VACUUM (ANALYZE)" if vacuum else "ANALYZE", time.perf_counter() - phase)

    whale_id = str(plans[-1].id) if whale_open > 0 else None
    ordered = [loaded.tenants[str(p.id)] for p in plans]
    return Manifest(
        database=_database_of(owner_url),
        invoices=loaded.invoices,
        tenants=[t for t in ordered if t.id != whale_id],
        whale=loaded.tenants[whale_id] if whale_id else None,
        pending_payments=sorted(loaded.payments, key=lambda p: (p.tenant_id, p.id)),
    )


async def _create_tenants(connection: Any, plans: Sequence[TenantPlan], started: float) -> None:
    """The tenants and their keys, into a database that must have none yet."""
    existing = await connection.fetchval("SELECT count(*) FROM tenants")
    if existing:
        raise RuntimeError("the database already has tenants: seed a fresh one")
    async with connection.transaction():
        await insert_tenants(connection, plans)
    log.info("tenants and API keys: %d in %.1fs", len(plans), time.perf_counter() - started)


async def _load(
    connection: Any,
    owner_url: str,
    plans: Sequence[TenantPlan],
    *,
    now: datetime,
    seed: int,
    sample: int,
    hosted_links: str | None,
) -> Loaded:
    """Every batch, with FORCE row-level security off meanwhile (see the module docstring)."""
    phase = time.perf_counter()
    keys = {str(p.id): p.key for p in plans}
    await _set_force_rls(connection, False)
    try:
        loaded = await load_batches(
            owner_url,
            plans,
            keys,
            now=now,
            seed=seed,
            sample=sample,
            link_pads=hmac_pads(hosted_links) if hosted_links else None,
        )
    finally:
        await _set_force_rls(connection, True)
    await _check_rls(connection)
    log.info(
        "customers, invoices, items, payments, timeline: %d invoices in %.1fs",
        loaded.invoices,
        time.perf_counter() - phase,
    )
    log.info(
        "  statement time summed over %d connections: %s",
        CONNECTIONS,
        ", ".join(f"{step} {seconds:.1f}s" for step, seconds in loaded.seconds.items()),
    )
    return loaded


async def _set_force_rls(connection: Any, force: bool) -> None:
    verb = "FORCE" if force else "NO FORCE"
    async with connection.transaction():
        for table in TENANT_TABLES:
            await connection.execute(f"ALTER TABLE {table} {verb} ROW LEVEL SECURITY")


async def _check_rls(connection: Any) -> None:
    rows = await connection.fetch(
        "SELECT relname FROM pg_class WHERE relname = ANY($1::text[])"
        " AND relkind = 'r' AND relrowsecurity AND relforcerowsecurity",
        list(TENANT_TABLES),
    )
    forced = {str(row["relname"]) for row in rows}
    missing = sorted(set(TENANT_TABLES) - forced)
    if missing:
        raise RuntimeError(f"row-level security is not forced on {', '.join(missing)}")


async def _vacuum(owner_url: str, *, full_vacuum: bool) -> None:
    """VACUUM (ANALYZE) every table, biggest first, on two connections.

    ANALYZE gives the planner statistics (the app's prepared statements turn generic and
    would otherwise plan blind); VACUUM also sets the visibility map, so index-only scans
    work, and hints every tuple now rather than on the benchmark's first reads.
    """
    connection = await asyncpg.connect(owner_url)
    try:
        rows = await connection.fetch(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = 'public' AND c.relkind = 'r'"
            " ORDER BY pg_total_relation_size(c.oid) DESC"
        )
    finally:
        await connection.close()
    queue: asyncio.Queue[str] = asyncio.Queue()
    for row in rows:
        queue.put_nowait(str(row["relname"]))
    command = "VACUUM (ANALYZE)" if full_vacuum else "ANALYZE"

    async def worker() -> None:
        connection = await asyncpg.connect(owner_url)
        try:
            await connection.execute("SET maintenance_work_mem = '512MB'")
            while True:
                try:
                    table = queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                await connection.execute(f"{command} {quote_ident(table)}")
        finally:
            await connection.close()

    await together(*(worker() for _ in range(CONNECTIONS)))


def _database_of(url: str) -> str:
    return urlsplit(url).path.lstrip("/")


# -- command line ---------------------------------------------------------------------------


async def _run(args: argparse.Namespace) -> None:
    started = time.perf_counter()
    owner_url, app_url = await prepare_database(
        args.admin_url, args.database, owner_role=args.owner_role, app_role=args.app_role
    )
    log.info(
        "database %s created and migrated: %.1fs", args.database, time.perf_counter() - started
    )
    manifest = await seed(
        owner_url,
        tenants=args.tenants,
        invoices_per_tenant=args.invoices,
        whale_open=args.whale_open,
        pending_payments=args.payments,
        invoice_sample=args.sample,
        seed=args.seed,
        hosted_links=args.hosted_links,
        vacuum=not args.no_vacuum,
    )
    path = args.manifest or RESULTS / f"{args.database}.manifest.json"
    manifest.dump(path)
    log.info(
        "seeded %d invoices in %d tenants%s, %d pending payments: %.1fs in all",
        manifest.invoices,
        len(manifest.tenants),
        " + whale" if manifest.whale else "",
        len(manifest.pending_payments),
        time.perf_counter() - started,
    )
    print(f"owner: {owner_url}\napp:   {app_url}\nmanifest: {path}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench.seed", description="Create and seed a benchmark database."
    )
    parser.add_argument("--tenants", type=int, required=True)
    parser.add_argument("--invoices", type=int, required=True, help="invoices per tenant")
    parser.add_argument("--whale-open", type=int, default=0, help="open invoices of the whale")
    parser.add_argument("--payments", type=int, default=0, help="pending payments")
    parser.add_argument("--database", required=True)
    parser.add_argument("--admin-url", default=DEFAULT_ADMIN_URL, help="a superuser's URL")
    parser.add_argument("--owner-role", default="tenvoice_bench_owner")
    parser.add_argument("--app-role", default="tenvoice_bench_app")
    parser.add_argument("--manifest", type=Path, help="default: bench/results/<db>.manifest.json")
    parser.add_argument("--sample", type=int, default=20, help="invoice ids per tenant")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--hosted-links", metavar="SECRETS_KEY", help="public links too, derived from this key"
    )
    parser.add_argument("--no-vacuum", action="store_true", help="ANALYZE only")
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args()
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(message)s",
        stream=sys.stdout,
    )
    asyncio.run(_run(args))


if __name__ == "__main__":
    main()
