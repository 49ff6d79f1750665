"""Wire models: camelCase on the wire, snake_case in Python, unknown input fields refused."""

import re
from datetime import date
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field
from pydantic.alias_generators import to_camel

from tenvoice.platform.errors import ValidationFailed
from tenvoice.platform.money import normalize_currency, parse_decimal


class InputModel(BaseModel):
    # populate_by_name stays off: snake_case input is an unknown field, not a synonym.
    model_config = ConfigDict(alias_generator=to_camel, extra="forbid", str_strip_whitespace=True)


class OutputModel(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, serialize_by_alias=True
    )


def _decimal(places: int, what: str) -> BeforeValidator:
    return BeforeValidator(lambda v: parse_decimal(v, max_places=places, what=what))


def _currency(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError("currency must be an ISO 4217 code")
    return normalize_currency(value)


Currency = Annotated[str, BeforeValidator(_currency)]
# Amount in a currency: the currency decides how many decimals are allowed, checked where
# both are known; 6 is the hard ceiling.
AmountInput = Annotated[Decimal, _decimal(6, "amount")]
Quantity = Annotated[Decimal, _decimal(4, "quantity"), AfterValidator(lambda v: _positive(v))]
UnitPrice = Annotated[Decimal, _decimal(6, "unitPrice"), AfterValidator(lambda v: _non_negative(v))]
TaxRate = Annotated[Decimal, _decimal(4, "taxRate"), AfterValidator(lambda v: _percent(v))]


def _metadata_value(value: Any) -> str:
    # Stripe's form encoding turns numbers and booleans into strings; a JSON client gets the
    # same. Structures and null have no string form to agree on.
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | Decimal) and not isinstance(value, bool):
        return str(value)
    if not isinstance(value, str):
        raise ValueError("metadata values are strings (numbers and booleans are converted)")
    return value


MetadataValue = Annotated[str, BeforeValidator(_metadata_value), Field(max_length=500)]
Metadata = Annotated[
    dict[Annotated[str, Field(min_length=1, max_length=40)], MetadataValue],
    Field(max_length=50),
]


_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def _iso_date(value: Any) -> date:
    if isinstance(value, date):
        return value
    if not isinstance(value, str) or not _ISO_DATE.match(value):
        raise ValueError("must be a date as YYYY-MM-DD")
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ValueError("is not a real calendar date") from None


# The WHATWG grammar of <input type=email> (https://html.spec.whatwg.org/#valid-e-mail-address),
# what browsers accept, widened to non-ASCII letters. Syntax only: whether a mailbox exists,
# or whether its domain is reserved for testing (example.test), is not ours to refuse.
_EMAIL = re.compile(
    r"^[\w.!#$%&'*+/=?^`{|}~-]+"
    r"@[^\W_](?:(?:[^\W_]|-){0,61}[^\W_])?(?:\.[^\W_](?:(?:[^\W_]|-){0,61}[^\W_])?)*$"
)


def _email(value: Any) -> str:
    if not isinstance(value, str) or not _EMAIL.match(value) or ".." in value:
        raise ValueError("must be an email address such as ada@example.com")
    return value


Email = Annotated[str, Field(max_length=320), AfterValidator(_email)]


# Only YYYY-MM-DD: lax parsing would also take a Unix timestamp or a datetime string.
IsoDate = Annotated[date, BeforeValidator(_iso_date)]


def _positive(value: Decimal) -> Decimal:
    if value <= 0:
        raise ValueError("must be greater than 0")
    if value > 1_000_000_000:
        raise ValueError("must be at most 1000000000")
    return value


def _non_negative(value: Decimal) -> Decimal:
    if value < 0:
        raise ValueError("must be 0 or more")
    if value > 1_000_000_000_000:
        raise ValueError("must be at most 1000000000000")
    return value


def _percent(value: Decimal) -> Decimal:
    if not 0 <= value <= 100:
        raise ValueError("must be between 0 and 100")
    return value


class FieldErrorOut(OutputModel):
    field: str
    message: str


class Problem(OutputModel):
    """An RFC 9457 problem, as every error response carries it."""

    type: str
    title: str
    status: int
    detail: str
    code: str
    request_id: str | None
    errors: list[FieldErrorOut] | None = None


_PROBLEM_DESCRIPTIONS = {
    400: "Malformed request (bad JSON, missing X-Tenant-Id for the admin key)",
    401: "Missing, invalid or revoked credentials",
    403: "The credential may not do this",
    404: "No such object for this tenant",
    409: "The object's state does not allow this",
    413: "Body over the size limit",
    415: "Body is not JSON",
    422: "Validation failed; `errors` names each field",
}


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries for the problem+json errors a router's routes can answer with."""
    schema = {"$ref": "#/components/schemas/Problem"}
    return {
        status: {
            "model": Problem,
            "description": _PROBLEM_DESCRIPTIONS[status],
            "content": {"application/problem+json": {"schema": schema}},
        }
        for status in statuses
    }


def inline_schema(model: type[BaseModel]) -> dict[str, Any]:
    """A model's JSON schema with its nested models written in place.

    For a request body documented by hand (one read raw, as a signed webhook is): pydantic's
    `$defs` references would not resolve inside an OpenAPI document.
    """
    schema = model.model_json_schema(by_alias=True)
    definitions: dict[str, Any] = schema.pop("$defs", {})

    def resolve(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/"):
                return resolve(definitions[ref.removeprefix("#/$defs/")])
            return {key: resolve(value) for key, value in node.items()}
        if isinstance(node, list):
            return [resolve(value) for value in node]
        return node

    resolved: dict[str, Any] = resolve(schema)
    return resolved


def choices(field: str, values: list[str], allowed: type[StrEnum]) -> tuple[str, ...]:
    """A filter given repeated (status=open&status=paid) or comma-separated (status=open,paid),
    each value one of `allowed`; duplicates dropped, order kept."""
    wanted = [part.strip() for value in values for part in value.split(",")]
    names = {member.value for member in allowed}
    if any(value not in names for value in wanted):
        raise ValidationFailed(field, f"must be among {', '.join(sorted(names))}")
    return tuple(dict.fromkeys(wanted))
