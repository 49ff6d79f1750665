import uuid
from datetime import datetime
from decimal import Decimal

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from tenvoice.platform.db import Base, ScaledDecimal, utcnow
from tenvoice.platform.ids import uuid7


class Tenant(Base):
    """A business on the platform. Platform-owned: only the admin key manages tenants."""

    __tablename__ = "tenants"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid7)
    name: Mapped[str] = mapped_column(String(200))
    default_currency: Mapped[str] = mapped_column(String(3))
    invoice_prefix: Mapped[str] = mapped_column(String(20))
    default_tax_rate: Mapped[Decimal] = mapped_column(ScaledDecimal(4))
    # The tenant's own budget for all its keys together ("N/second"); None: the default.
    rate_limit: Mapped[str | None] = mapped_column(String(32), default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class ApiKey(Base):
    """A tenant's API key. Looked up by hash before any tenant is known, so it is a platform
    table (no tenant scope); `tenant_id` still leads its primary key."""

    __tablename__ = "api_keys"
    __table_args__ = (Index("ix_api_keys_key_hash", "key_hash", unique=True),)

    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id"), primary_key=True)
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid7)
    name: Mapped[str] = mapped_column(String(200))
    prefix: Mapped[str] = mapped_column(String(16))
    key_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(default=None)
