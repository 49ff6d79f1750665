"""Measuring one workload: wrk against a served API, with a warm-up and every worker's RSS
sampled; and the rule every stage follows, that a failure goes into the report and the run
goes on.
"""

import uuid
from collections.abc import Awaitable, Callable
from typing import TypeVar

from bench import workloads as wl
from bench.context import RESULTS, Bench, Seeded
from bench.manifest import PaymentSeed, TenantSeed
from bench.procs import RssSampler, Service
from bench.results_model import Measured, Results
from bench.wrk import WrkResult, run_wrk

W1_REQUESTS = 5000

# A workload's requests for one phase ("warmup" or "main"), built just before wrk runs.
RequestSource = Callable[[str], list[wl.Request]]


def fixed(requests: list[wl.Request]) -> RequestSource:
    return lambda _phase: requests


class SignedWebhooks:
    """W4's requests, signed when asked for (the signature holds for 5 minutes); the warm-up
    and the measured run settle different payments."""

    def __init__(self, secret: str, warmup: list[PaymentSeed], main: list[PaymentSeed]) -> None:
        self.secret = secret
        self.payments = {"warmup": warmup, "main": main}
        self.plans: dict[str, wl.WebhookPlan] = {}
        # Webhook ids unique to this run: a reused database keeps the last run's inbox.
        self.run = uuid.uuid4().hex[:8]

    def __call__(self, phase: str) -> list[wl.Request]:
        tag = f"{self.run}_{phase}"
        plan = wl.webhooks(self.payments[phase], self.secret, threads=2, tag=tag)
        self.plans[phase] = plan
        return plan.requests

    def webhook_ids(self) -> list[str]:
        return [i for plan in self.plans.values() for i in plan.payment_of]


async def measure(
    bench: Bench,
    results: Results,
    service: Service,
    measured: Measured,
    script: str,
    requests: RequestSource | None,
) -> Measured:
    """A short warm-up (discarded), then the measured run with every worker's RSS sampled.
    A failure is recorded in the report, and the run goes on."""
    plan = bench.plan
    key = measured.key
    measured.workers = service.workers

    async def run(phase: str, name: str, seconds: float) -> WrkResult:
        data = None
        if requests is not None:
            data = wl.write_requests(RESULTS / "data" / f"{name}.tsv", requests(phase))
        return await run_wrk(
            service.url,
            script,
            data=data,
            connections=measured.connections,
            seconds=seconds,
            log=RESULTS / "wrk" / f"{name}.txt",
        )

    try:
        measured.warmup = await run("warmup", f"{key}-warmup", plan.warmup_s)
        with RssSampler(service.worker_pids()) as sampler:
            measured.wrk = await run("main", key, plan.measure_s)
        measured.memory = sampler.memory
        w = measured.wrk
        rss = "/".join(f"{v:.0f}" for v in sampler.memory.peak_rss_mb.values())
        bench.say(
            f"  {key:<11} {w.rps:8.1f} req/s  p50 {w.p50_ms:6.1f} ms  p99 {w.p99_ms:6.1f} ms"
            f"  errors {w.errors}  RSS {rss} MB"
        )
    except Exception as exc:
        measured.error = f"{type(exc).__name__}: {exc}"[:500]
        bench.say(f"  {key}: FAILED {measured.error}")
    if key != "ceiling":
        results.runs[key] = measured
    return measured


async def run_reads(
    bench: Bench, results: Results, service: Service, seeded: Seeded, suffix: str
) -> None:
    label = seeded.label
    tenants = seeded.manifest.tenants
    await measure(
        bench,
        results,
        service,
        Measured("W2" + suffix, "list 50 open invoices, first page, random tenant", label, 16),
        "w2_list.lua",
        fixed(wl.list_first_pages(tenants)),
    )
    await measure(
        bench,
        results,
        service,
        Measured("W3" + suffix, "get one invoice with items, random tenant", label, 16),
        "w3_get.lua",
        fixed(wl.get_invoices(tenants)),
    )


async def run_create(
    bench: Bench,
    results: Results,
    service: Service,
    tenants: list[TenantSeed],
    key: str,
    label: str,
    connections: int = 16,
    title: str = "create invoice, 3 items, finalize, random tenant",
) -> None:
    await measure(
        bench,
        results,
        service,
        Measured(key, title, label, connections),
        "w1_create.lua",
        fixed(wl.create_invoices(tenants, W1_REQUESTS)),
    )


T = TypeVar("T")


async def guarded(bench: Bench, results: Results, name: str, step: Awaitable[T]) -> T | None:
    """Run one stage; a failure goes into the report and the run goes on to the next."""
    try:
        return await step
    except Exception as exc:
        message = f"{name} failed: {type(exc).__name__}: {exc}"[:1000]
        results.notes.append(message)
        bench.say(message)
        return None
