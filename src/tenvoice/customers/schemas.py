from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

from pydantic import Field, field_validator

from tenvoice.credits.schemas import balances_view
from tenvoice.platform.schemas import NOT_BLANK, Email, InputModel, Metadata, OutputModel

Name = Annotated[str, Field(min_length=1, max_length=200, pattern=NOT_BLANK)]
Phone = Annotated[str, Field(min_length=1, max_length=40, pattern=NOT_BLANK)]


class Address(InputModel):
    line1: Annotated[str, Field(max_length=200)] | None = None
    line2: Annotated[str, Field(max_length=200)] | None = None
    city: Annotated[str, Field(max_length=100)] | None = None
    state: Annotated[str, Field(max_length=100)] | None = None
    postal_code: Annotated[str, Field(max_length=20)] | None = None
    country: Annotated[str, Field(pattern=r"^[A-Z]{2}$")] | None = None


class CustomerCreate(InputModel):
    name: Name
    email: Email
    phone: Phone | None = None
    address: Address | None = None
    metadata: Metadata = Field(default_factory=dict)


class CustomerPatch(InputModel):
    # Null clears phone, address and metadata (as Stripe's empty value does); a customer
    # always has a name and an email.
    not_null = frozenset({"name", "email"})

    name: Name | None = None
    email: Email | None = None
    phone: Phone | None = None
    address: Address | None = None
    metadata: Metadata | None = None

    @field_validator("metadata")
    @classmethod
    def _null_clears(cls, value: dict[str, str] | None) -> dict[str, str]:
        return {} if value is None else value


class CustomerOut(OutputModel):
    id: UUID
    name: str
    email: str
    phone: str | None
    address: dict[str, Any] | None
    metadata: dict[str, str]
    # Credit owed to the customer, by currency (API.md: Customer balance).
    balances: dict[str, str]
    created_at: datetime
    updated_at: datetime


def address_value(address: Address | None) -> dict[str, Any] | None:
    """The address as stored and returned: the object with camelCase keys."""
    return None if address is None else address.model_dump(by_alias=True)


def customer_out(customer: Any, balances: dict[str, int] | None = None) -> CustomerOut:
    """The wire form of the aggregate (or of anything with its attributes)."""
    return CustomerOut(
        id=customer.id,
        name=customer.name,
        email=customer.email,
        phone=customer.phone,
        address=customer.address,
        metadata=customer.metadata_,
        balances=balances_view(balances or {}),
        created_at=customer.created_at,
        updated_at=customer.updated_at,
    )
