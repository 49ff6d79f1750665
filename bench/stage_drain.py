"""The worker stages: W5, the outbox drained by `tenvoice worker` processes (see
`bench.drain`), and W7, events fanned out to three webhook endpoints (see `bench.fanout`)."""

from bench.context import Bench, Seeded
from bench.drain import drain
from bench.fanout import ENDPOINTS, fan_out
from bench.manifest import PaymentSeed
from bench.results_model import Results


async def stage_drain(
    bench: Bench, results: Results, seeded: Seeded, payments: list[PaymentSeed]
) -> None:
    plan = bench.plan
    if not payments:
        return
    bench.say(
        f"W5: 2 tenvoice workers drain {plan.drain_jobs} gateway.charge jobs "
        "(the receiver refuses 10%)"
    )
    try:
        results.drain = await drain(bench, seeded, payments)
    except Exception as exc:
        results.notes.append(f"W5 failed: {type(exc).__name__}: {exc}"[:500])
        bench.say(f"  W5: FAILED {exc}")
        return
    d = results.drain
    bench.say(
        f"  W5 {d.done}/{d.jobs} done in {d.drain_s:.1f}s ({d.deliveries_per_s:.0f}/s), "
        f"dead {d.dead}, retries {d.retries}, receiver took {d.accepted_ids} ids"
    )


async def stage_fanout(bench: Bench, results: Results, seeded: Seeded) -> None:
    events = bench.plan.fanout_events
    bench.say(
        f"W7: 2 tenvoice workers deliver {events} events to {ENDPOINTS} endpoints "
        f"({events * ENDPOINTS} deliveries)"
    )
    try:
        results.fanout = await fan_out(bench, seeded)
    except Exception as exc:
        results.notes.append(f"W7 failed: {type(exc).__name__}: {exc}"[:500])
        bench.say(f"  W7: FAILED {exc}")
        return
    f = results.fanout
    cpu = " / ".join(f"{s:.1f}" for s in f.worker_cpu_s)
    bench.say(
        f"  W7 {f.succeeded}/{f.deliveries} succeeded in {f.drain_s:.1f}s "
        f"({f.deliveries_per_s:.0f}/s), retries {f.retries}, lost {f.lost}, "
        f"out of order {f.out_of_order}, worker CPU {cpu} s"
    )
