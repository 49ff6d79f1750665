from datetime import datetime
from decimal import Decimal
from typing import Annotated
from uuid import UUID

from pydantic import Field, field_serializer

from tenvoice.platform.money import format_decimal
from tenvoice.platform.schemas import NOT_BLANK, Currency, InputModel, OutputModel, TaxRate

InvoicePrefix = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,19}$")]
# A tenant's own budget for all its keys together (API.md "Rate limits"); at least one
# request, at most a billion, a window of a second or a minute.
RateLimit = Annotated[
    str,
    Field(
        pattern=r"^[1-9][0-9]{0,8}/(second|minute)$",
        examples=["400/second", "6000/minute"],
        description="N/second or N/minute; null restores the default budget.",
    ),
]


class TenantCreate(InputModel):
    name: Annotated[str, Field(min_length=1, max_length=200, pattern=NOT_BLANK)]
    default_currency: Currency = "USD"
    invoice_prefix: InvoicePrefix = "INV"
    default_tax_rate: TaxRate = Decimal(0)


class TenantUpdate(InputModel):
    """What the admin may change of a tenant; fields not sent stay as they are."""

    rate_limit: RateLimit | None = None


class TenantOut(OutputModel):
    id: UUID
    name: str
    default_currency: str
    invoice_prefix: str
    default_tax_rate: Decimal
    # None: the default budget applies.
    rate_limit: str | None = None
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
