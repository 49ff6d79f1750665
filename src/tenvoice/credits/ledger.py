"""Reading and changing a customer's balance inside a command: the row is locked first, so
concurrent changes queue and each sees what the one before it left.

Invoices call in here when finalized (the balance is applied) and voided (it is given
back); this module imports nothing of theirs, so both rooms can use it.
"""

import uuid

from sqlalchemy import select

from tenvoice.credits.models import (
    BalanceTransaction,
    CreditNote,
    CreditNoteStatus,
    CustomerBalance,
)
from tenvoice.customers.models import Customer
from tenvoice.platform.db import utcnow
from tenvoice.platform.sql import insert_into
from tenvoice.platform.uow import UnitOfWork


async def locked_balance(
    uow: UnitOfWork, customer_id: uuid.UUID, currency: str, *, create: bool = False
) -> CustomerBalance | None:
    """The customer's balance in `currency`, locked until commit; created at 0 if asked."""
    session = uow.session
    if create:
        statement = (
            insert_into(session.get_bind().dialect.name, CustomerBalance)
            .values(
                tenant_id=uow.context.tenant_id,
                customer_id=customer_id,
                currency=currency,
                amount=0,
            )
            .on_conflict_do_nothing()
        )
        await session.execute(statement)
    # Tracked, so that customer.balance_changed carries the customer as it now is (the
    # identity map answers when the command has loaded it already).
    customer = await session.get(Customer, (uow.context.tenant_id, customer_id))
    if customer is not None:
        uow.track(customer)
    balance = await session.scalar(
        select(CustomerBalance)
        .where(CustomerBalance.customer_id == customer_id, CustomerBalance.currency == currency)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return None if balance is None else uow.track(balance)


def keep(uow: UnitOfWork, entry: BalanceTransaction | None) -> None:
    if entry is not None:
        uow.session.add(entry)


async def apply_to_new_invoice(
    uow: UnitOfWork,
    customer_id: uuid.UUID,
    currency: str,
    invoice_id: uuid.UUID,
    total: int,
) -> int:
    """What of the customer's credit an invoice being finalized takes (up to its total)."""
    balance = await locked_balance(uow, customer_id, currency)
    if balance is None or balance.amount == 0 or total == 0:
        return 0
    before = balance.amount
    change = balance.rules().apply_to_invoice(total)
    keep(uow, balance.enter(change, invoice_id=invoice_id, at=utcnow()))
    return before - balance.amount


async def give_back_from_invoice(
    uow: UnitOfWork,
    customer_id: uuid.UUID,
    currency: str,
    invoice_id: uuid.UUID,
    applied: int,
) -> None:
    """A voided invoice returns the credit it took."""
    if applied == 0:
        return
    balance = await locked_balance(uow, customer_id, currency, create=True)
    assert balance is not None
    change = balance.rules().unapply_from_invoice(applied)
    keep(uow, balance.enter(change, invoice_id=invoice_id, at=utcnow()))


async def has_issued_credit_notes(uow: UnitOfWork, invoice_id: uuid.UUID) -> bool:
    found = await uow.session.scalar(
        select(CreditNote.id)
        .where(CreditNote.invoice_id == invoice_id, CreditNote.status == CreditNoteStatus.ISSUED)
        .limit(1)
    )
    return found is not None
