"""invoice.overdue: checked by an outbox job due when the invoice's due date has passed.

The job is written with the finalize, so no sweep over every tenant's invoices is needed;
checking again is harmless, since the event is recorded once.
"""

import uuid
from datetime import UTC, date, datetime, time, timedelta

from tenvoice.invoices import commands
from tenvoice.invoices.events import InvoiceFinalized
from tenvoice.platform.outbox import Job, enqueue
from tenvoice.platform.uow import UnitOfWork
from tenvoice.platform.worker import JobContext

OVERDUE_CHECK = "invoice.overdue_check"


def overdue_from(due_date: date) -> datetime:
    """The first instant the invoice counts as overdue: the day after its due date, UTC."""
    return datetime.combine(due_date + timedelta(days=1), time(0), tzinfo=UTC)


async def schedule_overdue_check(event: InvoiceFinalized, uow: UnitOfWork) -> None:
    try:
        due = overdue_from(date.fromisoformat(event.due_date))
    except OverflowError:
        return  # due on 9999-12-31: never overdue
    enqueue(
        uow.session,
        OVERDUE_CHECK,
        {"invoiceId": str(event.invoice_id)},
        tenant_id=uow.context.tenant_id,
        not_before=due,
    )


async def check_overdue(job: Job, context: JobContext) -> None:
    invoice_id = uuid.UUID(job.payload["invoiceId"])
    async with context.unit_of_work(job.tenant_id) as uow:
        await uow.run(commands.record_overdue, commands.InvoiceAction(invoice_id))
