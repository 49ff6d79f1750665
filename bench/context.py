"""What every stage of a run shares: the plan, the processes, the secrets, and progress lines."""

import base64
import os
import secrets
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from bench.manifest import Manifest
from bench.procs import BIN, REPO, Processes, Service, free_port, wait_ready

RESULTS = REPO / "bench" / "results"
# The roles of the benchmark's databases: the owner seeds them, the API and pgbench connect as
# the app role, which row-level security binds.
OWNER_ROLE, APP_ROLE = "tenvoice_bench_owner", "tenvoice_bench_app"
# Every rate limit of a served API (see Bench.env).
_BUDGETS = ("RATE_LIMIT", "TENANT_RATE_LIMIT", "HOSTED_RATE_LIMIT", "WEBHOOK_RATE_LIMIT")
BUDGET = "1000000/second"


@dataclass(frozen=True)
class Plan:
    quick: bool
    tenants: int
    invoices_per_tenant: int
    whale_open: int
    pending_payments: int
    small_tenants: int  # the 10k database: small_tenants x small_invoices_per_tenant
    small_invoices_per_tenant: int
    warmup_s: float
    measure_s: float
    pgbench_s: float
    deep_page: int  # W2b: the page of 50 read by cursor and by OFFSET
    drain_jobs: int
    drain_timeout_s: float
    fanout_events: int  # W7: each fanned out to 3 endpoints
    w6_tenants: int = 10


FULL = Plan(
    quick=False,
    tenants=1000,
    invoices_per_tenant=1000,
    whale_open=51_000,
    pending_payments=30_000,
    small_tenants=10,
    small_invoices_per_tenant=1000,
    warmup_s=2,
    measure_s=10,
    pgbench_s=10,
    # The deepest page of 50 OFFSET may read (API.md: offset pages stop at row 10,000).
    deep_page=200,
    drain_jobs=10_000,
    drain_timeout_s=120,
    fanout_events=3334,
)
QUICK = Plan(
    quick=True,
    tenants=100,
    invoices_per_tenant=100,
    whale_open=5_100,
    pending_payments=5_000,
    small_tenants=10,
    small_invoices_per_tenant=1000,
    warmup_s=1,
    measure_s=3,
    pgbench_s=3,
    deep_page=100,
    drain_jobs=3_000,
    drain_timeout_s=40,
    fanout_events=500,
)


@dataclass
class Seeded:
    label: str  # "1M", "10k"
    database: str
    owner_url: str
    app_url: str
    admin_db_url: str  # the superuser, connected to this database (RLS does not bind it)
    manifest: Manifest
    seconds: float


def with_database(url: str, database: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + database))


class Bench:
    def __init__(
        self,
        plan: Plan,
        admin_url: str,
        results: Path = RESULTS,
        database: str = "tenvoice_bench",
        redis_url: str | None = None,
    ) -> None:
        self.plan = plan
        self.admin_url = admin_url
        # The PostgreSQL stages' rate limits count through it, as a multi-process deployment
        # shares them; None counts in each process.
        self.redis_url = redis_url
        # Dropped and re-created by each run: another name keeps two checkouts apart.
        self.database = database
        self.results = results
        self.procs = Processes()
        self.started = time.monotonic()
        self.admin_key = "tv_admin_" + secrets.token_urlsafe(32)
        self.webhook_secret = "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()
        self.secrets_key = secrets.token_urlsafe(32)

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def say(self, message: str) -> None:
        print(f"[{self.elapsed():6.1f}s] {message}", flush=True)

    def env(
        self,
        database_url: str,
        settings: dict[str, str] | None = None,
        *,
        shared_limits: bool = True,
        traces_to: str | None = None,
    ) -> dict[str, str]:
        """The environment of a tenvoice process: ours, minus any TENVOICE_ or OTEL_ setting
        the caller's shell has (the bench runs the defaults, as deployed), plus `settings`.
        Two defaults differ: webhooks may go to http:// and private addresses, since every
        endpoint of the bench is a receiver on 127.0.0.1; and every budget is far above
        what wrk can send, so the limiter does all its work (through Redis unless
        `shared_limits` is off) and refuses nothing: its cost is measured, not its refusals
        (W2b sends one key's requests only, W4 one address's). `traces_to`: an OTLP/HTTP
        endpoint that spans are exported to; unset, tracing is off, as by default."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("TENVOICE_", "OTEL_"))}
        env |= {
            "TENVOICE_DATABASE_URL": database_url,
            "TENVOICE_ADMIN_KEY": self.admin_key,
            "TENVOICE_GATEWAY_WEBHOOK_SECRET": self.webhook_secret,
            "TENVOICE_SECRETS_KEY": self.secrets_key,
            "TENVOICE_WEBHOOK_ALLOW_PRIVATE": "true",
        }
        env |= {f"TENVOICE_{name}": BUDGET for name in _BUDGETS}
        if shared_limits and self.redis_url:
            env["TENVOICE_REDIS_URL"] = self.redis_url
        if traces_to:
            env |= {"OTEL_EXPORTER_OTLP_ENDPOINT": traces_to, "OTEL_SERVICE_NAME": "tenvoice"}
        env |= {f"TENVOICE_{k.upper()}": v for k, v in (settings or {}).items()}
        return env

    async def serve(
        self,
        name: str,
        database_url: str,
        *,
        workers: int = 2,
        shared_limits: bool = True,
        traces_to: str | None = None,
        **settings: str,
    ) -> Service:
        """`tenvoice serve --workers N`, as a user deploys it, on a free port."""
        port = free_port()
        argv = [str(BIN / "tenvoice"), "serve", "--host", "127.0.0.1", "--port", str(port)]
        env = self.env(database_url, settings, shared_limits=shared_limits, traces_to=traces_to)
        service = self.procs.start(
            name,
            [*argv, "--workers", str(workers)],
            env=env,
            log_path=self.results / "logs" / f"{name}.log",
            url=f"http://127.0.0.1:{port}",
            workers=workers,
        )
        await wait_ready(service)
        return service

    async def ceiling(self, workers: int = 2) -> Service:
        port = free_port()
        service = self.procs.start(
            "ceiling",
            [sys.executable, "-m", "bench.ceiling", "--port", str(port), "--workers", str(workers)],
            env=dict(os.environ),
            log_path=self.results / "logs" / "ceiling.log",
            url=f"http://127.0.0.1:{port}",
            workers=workers,
        )
        await wait_ready(service)
        return service
