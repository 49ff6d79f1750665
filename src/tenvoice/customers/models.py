import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Index, String
from sqlalchemy.orm import Mapped, mapped_column

from tenvoice.customers.events import CustomerCreated, CustomerDeleted, CustomerUpdated
from tenvoice.platform.db import Base, utcnow
from tenvoice.platform.ids import uuid7
from tenvoice.platform.messages import EventRecorder
from tenvoice.platform.tenancy import TenantOwned

EDITABLE = ("name", "email", "phone", "address", "metadata_")


class Customer(TenantOwned, EventRecorder, Base):
    __tablename__ = "customers"
    __table_args__ = (Index("ix_customers_tenant_created", "tenant_id", "created_at", "id"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid7)
    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str] = mapped_column(String(320))
    phone: Mapped[str | None] = mapped_column(String(40))
    address: Mapped[dict[str, Any] | None]
    metadata_: Mapped[dict[str, str]] = mapped_column("metadata")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    deleted_at: Mapped[datetime | None] = mapped_column(default=None)

    @classmethod
    def register(cls, **fields: Any) -> "Customer":
        now = utcnow()
        customer = cls(id=uuid7(), created_at=now, updated_at=now, **fields)
        customer.record(CustomerCreated(customer.id, customer.name, customer.email))
        return customer

    def update(self, changes: dict[str, Any]) -> None:
        changed = [name for name, value in changes.items() if getattr(self, name) != value]
        if not changed:
            return
        for name in changed:
            setattr(self, name, changes[name])
        self.updated_at = utcnow()
        self.record(CustomerUpdated(self.id, tuple(_wire(name) for name in changed)))

    def delete(self) -> None:
        self.deleted_at = self.updated_at = utcnow()
        self.record(CustomerDeleted(self.id))


def _wire(name: str) -> str:
    return "metadata" if name == "metadata_" else name
