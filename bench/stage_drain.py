"""The W5 stage: the outbox drained by `tenvoice worker` processes (see `bench.drain`)."""

from bench.context import Bench, Seeded
from bench.drain import drain
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
