from datetime import datetime
from decimal import Decimal
from typing import Annotated
from uuid import UUID

from pydantic import Field, field_serializer

from tenvoice.platform.money import format_decimal
from tenvoice.platform.schemas import NOT_BLANK, Currency, InputModel, OutputModel, TaxRate

InvoicePrefix = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,19}$")]


class TenantCreate(InputModel):
    name: Annotated[str, Field(min_length=1, max_length=200, pattern=NOT_BLANK)]
    default_currency: Currency = "USD"
    invoice_prefix: InvoicePrefix = "INV"
    default_tax_rate: TaxRate = Decimal(0)


class TenantOut(OutputModel):
    id: UUID
    name: str
    default_currency: str
    invoice_prefix: str
    default_tax_rate: Decimal
    created_at: datetime
    updated_at: datetime

    @field_serializer("default_tax_rate")
    def _rate(self, value: Decimal) -> str:
        return format_decimal(value)


class ApiKeyCreate(InputModel):
    name: Annotated[str, Field(min_length=1, max_length=200, pattern=NOT_BLANK)]


class ApiKeyOut(OutputModel):
    id: UUID
    name: str
    prefix: str
    created_at: datetime
    revoked_at: datetime | None = None


class ApiKeyCreated(ApiKeyOut):
    """The only response that ever carries the key itself."""

    key: str
