"""`tenvoice jobs`: what the outbox holds, the counts features keep by status (webhook
deliveries and endpoints), and every dead job with its last error."""

import uuid
from collections.abc import Sequence

from sqlalchemy import func, select, update

from tenvoice.config import Settings
from tenvoice.platform.db import Database, utcnow
from tenvoice.platform.metrics import StatusCounts, StoredCounts
from tenvoice.platform.outbox import JobStatus, OutboxJob

J = OutboxJob


async def report(settings: Settings, retry: str | None, stored: Sequence[StoredCounts]) -> int:
    db = Database(settings.database_url, pool_size=1)
    try:
        if retry is not None:
            return await _retry(db, retry)
        async with db.lookup() as connection:
            counts = (
                await connection.execute(select(J.status, func.count()).group_by(J.status))
            ).all()
            dead = (
                await connection.execute(
                    select(J.id, J.kind, J.tenant_id, J.attempts, J.finished_at, J.last_error)
                    .where(J.status == JobStatus.DEAD.value)
                    .order_by(J.finished_at.desc())
                    .limit(50)
                )
            ).all()
            series: StatusCounts = {}
            for counts_of in stored:
                series |= await counts_of.read(connection)
    finally:
        await db.dispose()
    for status, count in counts:
        print(f"{status:8} {count}")
    print()
    for name, by_status in series.items():
        print(f"{name}: {_by_status(by_status)}")
    for job in dead:
        print(f"\ndead {job.id} {job.kind} tenant={job.tenant_id} attempts={job.attempts}")
        print(f"  at {job.finished_at:%Y-%m-%d %H:%M:%S}Z: {job.last_error}")
    return 0


def _by_status(counts: dict[str, int]) -> str:
    return " ".join(f"{status}={count}" for status, count in counts.items())


async def _retry(db: Database, job_id: str) -> int:
    try:
        target = uuid.UUID(job_id)
    except ValueError:
        print(f"not a job id: {job_id}")
        return 2
    now = utcnow()
    async with db.autocommit() as connection:
        result = await connection.execute(
            update(J)
            .where(J.id == target, J.status == JobStatus.DEAD.value)
            .values(
                status=JobStatus.PENDING.value,
                attempts=0,
                run_after=now,
                updated_at=now,
                finished_at=None,
            )
        )
    if result.rowcount != 1:
        print(f"no dead job {job_id}")
        return 1
    print(f"job {job_id} queued again")
    return 0
