"""The seeding stage: each database the run measures, seeded afresh (`bench.seed`) or, with
`--reuse-seed`, taken as the last run left it, with its manifest.
"""

import time
from urllib.parse import urlsplit, urlunsplit

from bench.context import APP_ROLE, OWNER_ROLE, RESULTS, Bench, Seeded, with_database
from bench.database import prepare_database
from bench.manifest import Manifest
from bench.results_model import Results, SeedInfo


def _role_url(admin_url: str, role: str, database: str) -> str:
    parts = urlsplit(admin_url)
    netloc = f"{role}@{parts.hostname or '127.0.0.1'}:{parts.port or 5432}"
    return urlunsplit(parts._replace(netloc=netloc, path="/" + database))


async def seed_database(
    bench: Bench,
    results: Results,
    label: str,
    database: str,
    *,
    tenants: int,
    per_tenant: int,
    whale_open: int,
    payments: int,
    reuse: bool,
) -> Seeded:
    manifest_path = RESULTS / f"manifest-{label}.json"
    started = time.perf_counter()
    reused = reuse and manifest_path.exists()
    if reused:
        bench.say(f"reusing {database} and its manifest ({manifest_path.name})")
        manifest = Manifest.load(manifest_path)
        owner_url = _role_url(bench.admin_url, OWNER_ROLE, database)
        app_url = _role_url(bench.admin_url, APP_ROLE, database)
    else:
        bench.say(
            f"seeding {database}: {tenants} tenants x {per_tenant} invoices, "
            f"whale {whale_open} open, {payments} pending payments"
        )
        owner_url, app_url = await prepare_database(
            bench.admin_url, database, owner_role=OWNER_ROLE, app_role=APP_ROLE
        )
        manifest = await _seed(owner_url, tenants, per_tenant, whale_open, payments)
        manifest.dump(manifest_path)
    seconds = time.perf_counter() - started
    results.seeded.append(_seed_info(label, database, manifest, 0.0 if reused else seconds))
    bench.say(f"{database}: {manifest.invoices} invoices ready ({seconds:.1f}s)")
    return Seeded(
        label,
        database,
        owner_url,
        app_url,
        with_database(bench.admin_url, database),
        manifest,
        seconds,
    )


async def _seed(
    owner_url: str, tenants: int, per_tenant: int, whale_open: int, payments: int
) -> Manifest:
    from bench import seed as seeder

    return await seeder.seed(
        owner_url,
        tenants=tenants,
        invoices_per_tenant=per_tenant,
        whale_open=whale_open,
        pending_payments=payments,
    )


def _seed_info(label: str, database: str, manifest: Manifest, seconds: float) -> SeedInfo:
    return SeedInfo(
        label,
        database,
        len(manifest.tenants) + (1 if manifest.whale else 0),
        manifest.invoices,
        manifest.whale.open_invoices if manifest.whale else 0,
        len(manifest.pending_payments),
        seconds,
    )
