import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import exists, select

from tenvoice.customers.errors import CustomerHasOpenInvoices, CustomerNotFound
from tenvoice.customers.models import Customer
from tenvoice.invoices.models import UNPAID_STATUSES, Invoice
from tenvoice.platform.uow import UnitOfWork


@dataclass(frozen=True, slots=True)
class CreateCustomer:
    name: str
    email: str
    phone: str | None
    address: dict[str, Any] | None
    metadata: dict[str, str]


@dataclass(frozen=True, slots=True)
class UpdateCustomer:
    customer_id: uuid.UUID
    changes: dict[str, Any]


@dataclass(frozen=True, slots=True)
class DeleteCustomer:
    customer_id: uuid.UUID


async def load_customer(uow: UnitOfWork, customer_id: uuid.UUID) -> Customer:
    customer = await uow.session.scalar(
        select(Customer)
        .where(Customer.id == customer_id, Customer.deleted_at.is_(None))
        .with_for_update()
    )
    if customer is None:
        raise CustomerNotFound(f"No customer {customer_id}.")
    return uow.track(customer)


async def create_customer(uow: UnitOfWork, command: CreateCustomer) -> Customer:
    customer = Customer.register(
        name=command.name,
        email=command.email,
        phone=command.phone,
        address=command.address,
        metadata_=command.metadata,
    )
    uow.session.add(uow.track(customer))
    await uow.session.flush()
    return customer


async def update_customer(uow: UnitOfWork, command: UpdateCustomer) -> Customer:
    customer = await load_customer(uow, command.customer_id)
    customer.update(command.changes)
    await uow.session.flush()
    return customer


async def delete_customer(uow: UnitOfWork, command: DeleteCustomer) -> None:
    customer = await load_customer(uow, command.customer_id)
    has_open = await uow.session.scalar(
        select(
            exists().where(Invoice.customer_id == customer.id, Invoice.status.in_(UNPAID_STATUSES))
        )
    )
    if has_open:
        raise CustomerHasOpenInvoices(
            "Void, collect or mark uncollectible-and-settle its open invoices first."
        )
    customer.delete()
