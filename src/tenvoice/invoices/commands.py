import uuid
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import ScalarSelect, and_, select
from sqlalchemy.orm import joinedload

from tenvoice.credits import ledger
from tenvoice.customers.errors import CustomerNotFound
from tenvoice.customers.models import Customer
from tenvoice.invoices.amounts import Line
from tenvoice.invoices.errors import CustomerDeleted, InvalidInvoiceTransition, InvoiceNotFound
from tenvoice.invoices.links import HostedInvoiceLink, LinkTokens
from tenvoice.invoices.models import Invoice, InvoiceNumberCounter, InvoiceStatus
from tenvoice.platform.db import utcnow
from tenvoice.platform.errors import AppError, ValidationFailed
from tenvoice.platform.sql import insert_into
from tenvoice.platform.tokens import token_hash
from tenvoice.platform.uow import UnitOfWork
from tenvoice.tenants.models import Tenant

DEFAULT_DAYS_UNTIL_DUE = 30


@dataclass(frozen=True, slots=True)
class LineInput:
    description: str
    quantity: Decimal
    unit_price: Decimal
    tax_rate: Decimal | None


@dataclass(frozen=True, slots=True)
class CreateInvoice:
    customer_id: uuid.UUID
    currency: str | None
    issue_date: date | None
    due_date: date | None
    items: list[LineInput]
    memo: str | None
    metadata: dict[str, str]
    finalize: bool
    # Derives the public link's token when the invoice is finalized.
    links: LinkTokens


@dataclass(frozen=True, slots=True)
class ReviseInvoice:
    invoice_id: uuid.UUID
    changes: dict[str, Any] = field(default_factory=dict)
    items: list[LineInput] | None = None


@dataclass(frozen=True, slots=True)
class InvoiceAction:
    """send, void, mark-uncollectible or delete one invoice."""

    invoice_id: uuid.UUID


@dataclass(frozen=True, slots=True)
class FinalizeInvoice:
    invoice_id: uuid.UUID
    links: LinkTokens


async def _tenant(uow: UnitOfWork) -> Tenant:
    assert uow.context.tenant_id is not None
    tenant = await uow.session.get(Tenant, uow.context.tenant_id)
    assert tenant is not None, "an authenticated tenant exists"
    return tenant


def _lines(items: list[LineInput], tenant: Tenant) -> list[Line]:
    return [
        Line(
            item.description,
            item.quantity,
            item.unit_price,
            tenant.default_tax_rate if item.tax_rate is None else item.tax_rate,
        )
        for item in items
    ]


async def _require_customer(uow: UnitOfWork, customer_id: uuid.UUID) -> Customer:
    customer = await uow.session.get(Customer, (uow.context.tenant_id, customer_id))
    if customer is None or customer.deleted_at is not None:
        raise CustomerNotFound(f"No customer {customer_id}.")
    return customer


async def _tenant_and_customer(uow: UnitOfWork, customer_id: uuid.UUID) -> tuple[Tenant, Customer]:
    """The tenant's defaults and the invoice's customer, in one round trip."""
    row = (
        await uow.session.execute(
            select(Tenant, Customer)
            .outerjoin(Customer, and_(Customer.tenant_id == Tenant.id, Customer.id == customer_id))
            .where(Tenant.id == uow.context.tenant_id)
        )
    ).one()
    tenant, customer = row
    if customer is None or customer.deleted_at is not None:
        raise CustomerNotFound(f"No customer {customer_id}.")
    return tenant, customer


async def load_invoice(
    uow: UnitOfWork, invoice_id: uuid.UUID | ScalarSelect[uuid.UUID], *, with_items: bool = True
) -> Invoice:
    """The invoice, locked for the rest of the transaction (FOR UPDATE on PostgreSQL; SQLite's
    write transactions are exclusive already)."""
    statement = select(Invoice).where(Invoice.id == invoice_id).with_for_update(of=Invoice)
    if with_items:
        # Joined, not a second query: one round trip under the lock (FOR UPDATE OF locks the
        # invoice row alone, as the items change only with it).
        statement = statement.options(joinedload(Invoice.items))
    # Read afresh: a row this session saw before the lock may have changed since.
    statement = statement.execution_options(populate_existing=True)
    invoice = (await uow.session.scalars(statement)).unique().one_or_none()
    if invoice is None:
        named = invoice_id if isinstance(invoice_id, uuid.UUID) else "with that reference"
        raise InvoiceNotFound(f"No invoice {named}.")
    return uow.track(invoice)


async def load_invoice_of(
    uow: UnitOfWork,
    model: Any,
    entity_id: uuid.UUID,
    missing: AppError,
    *,
    with_items: bool = False,
) -> Invoice:
    """The invoice of a payment, refund or credit note (`model`'s row `entity_id`), locked
    before that row is read: the lock order every command on an invoice's money keeps. The
    invoice is found through the row in the statement that locks it; `missing` if either
    is not there."""
    of_entity = select(model.invoice_id).where(model.id == entity_id).scalar_subquery()
    try:
        return await load_invoice(uow, of_entity, with_items=with_items)
    except InvoiceNotFound:
        raise missing from None


async def create_invoice(uow: UnitOfWork, command: CreateInvoice) -> Invoice:
    tenant, customer = await _tenant_and_customer(uow, command.customer_id)
    issue_date = command.issue_date or utcnow().date()
    due_date = command.due_date or _default_due_date(issue_date)
    invoice = Invoice.draft(
        customer_id=command.customer_id,
        currency=command.currency or tenant.default_currency,
        issue_date=issue_date,
        due_date=due_date,
        lines=_lines(command.items, tenant),
        memo=command.memo,
        metadata=command.metadata,
    )
    uow.session.add(uow.track(invoice))
    if command.finalize:
        # The customer was checked just above: creating and finalizing queries it once.
        await _finalize(uow, invoice, tenant, customer, command.links)
    # No flush here: the commit's flush writes what is left with the timeline and outbox rows.
    return invoice


def _default_due_date(issue_date: date) -> date:
    try:
        return issue_date + timedelta(days=DEFAULT_DAYS_UNTIL_DUE)
    except OverflowError:
        # An issueDate in the last days of year 9999 has no default due date to offer.
        raise ValidationFailed(
            "dueDate", "give a dueDate: issueDate + 30 days is past 9999-12-31"
        ) from None


async def revise_invoice(uow: UnitOfWork, command: ReviseInvoice) -> Invoice:
    invoice = await load_invoice(uow, command.invoice_id)
    changes = dict(command.changes)
    if "customer_id" in changes:
        await _require_customer(uow, changes["customer_id"])
    lines = None
    if command.items is not None:
        lines = _lines(command.items, await _tenant(uow))
    invoice.revise(changes, lines)
    await uow.session.flush()
    return invoice


async def delete_invoice(uow: UnitOfWork, command: InvoiceAction) -> None:
    invoice = await load_invoice(uow, command.invoice_id)
    invoice.discard()
    await uow.session.delete(invoice)


async def finalize_invoice(uow: UnitOfWork, command: FinalizeInvoice) -> Invoice:
    invoice = await load_invoice(uow, command.invoice_id)
    customer = await uow.session.get(Customer, (uow.context.tenant_id, invoice.customer_id))
    assert customer is not None, "the composite foreign key keeps an invoice's customer"
    await _finalize(uow, invoice, await _tenant(uow), customer, command.links)
    await uow.session.flush()
    return invoice


async def send_invoice(uow: UnitOfWork, command: InvoiceAction) -> Invoice:
    invoice = await load_invoice(uow, command.invoice_id)
    invoice.send(utcnow())
    return invoice


async def void_invoice(uow: UnitOfWork, command: InvoiceAction) -> Invoice:
    invoice = await load_invoice(uow, command.invoice_id)
    if await ledger.has_issued_credit_notes(uow, invoice.id):
        # Its credit notes moved money (refunds, credit) that a void would not take back.
        raise InvalidInvoiceTransition("The invoice has credit notes; void them first.")
    now = utcnow()
    invoice.void(now)
    # The customer's credit it took goes back to the customer (as Stripe does).
    await ledger.give_back_from_invoice(
        uow, invoice.customer_id, invoice.currency, invoice.id, invoice.applied_balance
    )
    return invoice


async def mark_invoice_uncollectible(uow: UnitOfWork, command: InvoiceAction) -> Invoice:
    invoice = await load_invoice(uow, command.invoice_id)
    invoice.mark_uncollectible(utcnow())
    return invoice


async def record_overdue(uow: UnitOfWork, command: InvoiceAction) -> None:
    invoice = await load_invoice(uow, command.invoice_id, with_items=False)
    now = utcnow()
    invoice.record_overdue(now.date(), now)


async def _finalize(
    uow: UnitOfWork, invoice: Invoice, tenant: Tenant, customer: Customer, links: LinkTokens
) -> None:
    invoice.check_transition(InvoiceStatus.OPEN, "finalize")
    if customer.deleted_at is not None:
        raise CustomerDeleted("Its customer was deleted; change the customer first.")
    now = utcnow()
    sequence = await _next_in_sequence(uow, tenant.id, now.year)
    # After the counter: the balance row is locked last, as every command that takes it
    # locks it after its invoice.
    applied = await ledger.apply_to_new_invoice(
        uow, customer.id, invoice.currency, invoice.id, invoice.total
    )
    invoice.finalize(f"{tenant.invoice_prefix}-{now.year}-{sequence:05d}", now, applied)
    # The link references the invoice, which may still be pending (create with finalize);
    # the unit of work orders inserts only along relationships, so the invoice goes first
    # (and only then has the id its token is derived from).
    await uow.session.flush()
    token = links.token(tenant.id, invoice.id)
    uow.session.add(
        HostedInvoiceLink(tenant_id=tenant.id, invoice_id=invoice.id, token_hash=token_hash(token))
    )


async def _next_in_sequence(uow: UnitOfWork, tenant_id: uuid.UUID, year: int) -> int:
    # The statement is taken only after the invoice row is locked, and the counter row stays
    # locked until commit: two finalizes of one tenant and year queue here, never interleave.
    counter = InvoiceNumberCounter
    statement = (
        insert_into(uow.session.get_bind().dialect.name, counter)
        .values(tenant_id=tenant_id, year=year, last_value=1)
        .on_conflict_do_update(
            index_elements=[counter.tenant_id, counter.year],
            set_={"last_value": counter.last_value + 1},
        )
        .returning(counter.last_value)
    )
    value = (await uow.session.execute(statement)).scalar_one()
    return int(value)
