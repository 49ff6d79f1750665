"""Wire models: camelCase on the wire, snake_case in Python, unknown input fields refused."""

import re
from datetime import date
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any, ClassVar

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
)
from pydantic.alias_generators import to_camel

from tenvoice.platform.errors import ValidationFailed
from tenvoice.platform.money import CURRENCY_EXPONENTS, normalize_currency, parse_decimal


def _document_input(schema: dict[str, Any], model: type[BaseModel]) -> None:
    """Fields in `not_null` are documented without null, and no optional field that refuses
    null documents `default: null` (absent means "unchanged" or "the default")."""
    refused = {
        field.alias or name
        for name, field in model.model_fields.items()
        if name in getattr(model, "not_null", ())
    }
    for name, field in schema.get("properties", {}).items():
        branches = field.get("anyOf", [])
        if name in refused and {"type": "null"} in branches:
            rest = [branch for branch in branches if branch != {"type": "null"}]
            del field["anyOf"]
            field.update(rest[0] if len(rest) == 1 else {"anyOf": rest})
        nullable = {"type": "null"} in field.get("anyOf", [])
        if "default" in field and field["default"] is None and not nullable:
            del field["default"]


# Input strings are stripped (InputModel), so spaces alone make an empty one: a required
# text documents that it holds something else (and is refused as too short when it doesn't).
NOT_BLANK = r"\S"


class InputModel(BaseModel):
    # populate_by_name stays off: snake_case input is an unknown field, not a synonym.
    model_config = ConfigDict(
        alias_generator=to_camel,
        extra="forbid",
        str_strip_whitespace=True,
        json_schema_extra=_document_input,
    )
    # Optional fields (absent: unchanged) that have no empty value, so null is refused.
    not_null: ClassVar[frozenset[str]] = frozenset()

    @field_validator("*")
    @classmethod
    def _refuse_null(cls, value: Any, info: ValidationInfo) -> Any:
        # Runs only for fields the client sent.
        if value is None and info.field_name in cls.not_null:
            raise ValueError("cannot be null")
        return value


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


def _fraction(places: int, *, nonzero: bool) -> str:
    """1..places decimals; with `nonzero`, not all of them 0 (a regex can't count, so each
    number of leading zeros is spelled out)."""
    if not nonzero:
        return rf"\d{{1,{places}}}"
    return "|".join(
        "0" * zeros + "[1-9]" + (rf"\d{{0,{rest}}}" if (rest := places - 1 - zeros) else "")
        for zeros in range(places)
    )


def _decimal_schema(
    places: int, digits: int, *, positive: bool, signed: bool = False
) -> WithJsonSchema:
    """What a decimal input documents: a plain decimal string, or a JSON number.

    Numbers are documented as integers: a generated binary fraction (0.1 + 0.2) is rarely a
    decimal of few places, though numbers written with decimals are read exactly and taken.
    `digits` bounds the whole part, so every documented value is within the input's range.
    """
    whole = rf"[1-9]\d{{0,{digits - 1}}}"
    any_fraction = rf"(?:\.{_fraction(places, nonzero=False)})?"
    sign = "-?" if signed else ""
    if positive:
        text = rf"^{sign}(?:{whole}{any_fraction}|0\.(?:{_fraction(places, nonzero=True)}))$"
    else:
        text = rf"^(?:0|{whole}){any_fraction}$"
    bound = "exclusiveMinimum" if positive else "minimum"
    integer: dict[str, Any] = {"type": "integer", bound: 0, "maximum": 10**digits - 1}
    if signed:
        # Any integer in range but 0 (JSON Schema has no "not equal").
        integer = {
            "type": "integer",
            "minimum": -(10**digits - 1),
            "maximum": 10**digits - 1,
            "not": {"const": 0},
        }
    description = f"A decimal of at most {places} places, as a string (or a JSON number)."
    if signed:
        description = "A decimal other than 0 (negative lowers the balance); " + description[2:]
    return WithJsonSchema(
        {"anyOf": [{"type": "string", "pattern": text}, integer], "description": description}
    )


# Codes are taken in any case; the document lists them as ISO 4217 writes them.
Currency = Annotated[
    str,
    BeforeValidator(_currency),
    WithJsonSchema({"type": "string", "enum": sorted(CURRENCY_EXPONENTS)}),
]
# Amount in a currency: the currency decides how many decimals are allowed, checked where
# both are known; 6 is the hard ceiling.
AmountInput = Annotated[
    Decimal,
    _decimal(6, "amount"),
    AfterValidator(lambda v: _positive(v, MAX_AMOUNT)),
    _decimal_schema(6, 12, positive=True),
]
# How a credit note's post-payment part is split: any part may be 0.
AmountOrZero = Annotated[
    Decimal,
    _decimal(6, "amount"),
    AfterValidator(lambda v: _non_negative(v)),
    _decimal_schema(6, 12, positive=False),
]
# A change either way (a balance adjustment): never 0.
SignedAmount = Annotated[
    Decimal,
    _decimal(6, "amount"),
    AfterValidator(lambda v: _nonzero(v, MAX_AMOUNT)),
    _decimal_schema(6, 12, positive=True, signed=True),
]
Quantity = Annotated[
    Decimal,
    _decimal(4, "quantity"),
    AfterValidator(lambda v: _positive(v, MAX_QUANTITY)),
    _decimal_schema(4, 9, positive=True),
]
UnitPrice = Annotated[
    Decimal,
    _decimal(6, "unitPrice"),
    AfterValidator(lambda v: _non_negative(v)),
    _decimal_schema(6, 12, positive=False),
]
TaxRate = Annotated[
    Decimal,
    _decimal(4, "taxRate"),
    AfterValidator(lambda v: _percent(v)),
    # 0..100: whole parts of up to 2 digits, or exactly 100.
    WithJsonSchema(
        {
            "anyOf": [
                {
                    "type": "string",
                    "pattern": r"^(?:(?:0|[1-9]\d?)(?:\.\d{1,4})?|100(?:\.0{1,4})?)$",
                },
                {"type": "integer", "minimum": 0, "maximum": 100},
            ],
            "description": "A percentage, 0 to 100, of at most 4 decimal places, as a string "
            "(or a JSON number).",
        }
    ),
]


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


MetadataValue = Annotated[
    str,
    BeforeValidator(_metadata_value),
    Field(max_length=500),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "maxLength": 500},
                {"type": "number"},
                {"type": "boolean"},
            ],
            "description": "A string; numbers and booleans are taken as their text.",
        }
    ),
]
Metadata = Annotated[
    dict[Annotated[str, Field(min_length=1, max_length=40, pattern=NOT_BLANK)], MetadataValue],
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
# The local part is dot-separated atoms (no leading, trailing or doubled dot). The pattern is
# also the OpenAPI document's, so what it documents is exactly what is taken.
_EMAIL_PATTERN = (
    r"^[\w!#$%&'*+/=?^`{|}~-]+(?:\.[\w!#$%&'*+/=?^`{|}~-]+)*"
    r"@[^\W_](?:(?:[^\W_]|-){0,61}[^\W_])?(?:\.[^\W_](?:(?:[^\W_]|-){0,61}[^\W_])?)*$"
)
_EMAIL = re.compile(_EMAIL_PATTERN)


def _email(value: Any) -> str:
    if not isinstance(value, str) or not _EMAIL.match(value):
        raise ValueError("must be an email address such as ada@example.com")
    return value


Email = Annotated[
    str,
    Field(max_length=320, json_schema_extra={"pattern": _EMAIL_PATTERN}),
    AfterValidator(_email),
]


# Only YYYY-MM-DD: lax parsing would also take a Unix timestamp or a datetime string.
IsoDate = Annotated[date, BeforeValidator(_iso_date)]


MAX_QUANTITY = 1_000_000_000
MAX_AMOUNT = 1_000_000_000_000


def _positive(value: Decimal, most: int) -> Decimal:
    if value <= 0:
        raise ValueError("must be greater than 0")
    if value > most:
        raise ValueError(f"must be at most {most}")
    return value


def _nonzero(value: Decimal, most: int) -> Decimal:
    if value == 0:
        raise ValueError("must not be 0")
    if abs(value) > most:
        raise ValueError(f"must be between -{most} and {most}")
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
    429: "Over a rate limit: `Retry-After` says in how many seconds to retry",
    503: "A dependency is down or not ready; `code` says which",
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


def documented_choices(allowed: type[StrEnum]) -> WithJsonSchema:
    """One value of a repeatable filter, as the document lists it (`choices` also takes
    "open,paid" in one value)."""
    return WithJsonSchema({"type": "string", "enum": [member.value for member in allowed]})


def choices(field: str, values: list[str], allowed: type[StrEnum]) -> tuple[str, ...]:
    """A filter given repeated (status=open&status=paid) or comma-separated (status=open,paid),
    each value one of `allowed`; duplicates dropped, order kept."""
    wanted = [part.strip() for value in values for part in value.split(",")]
    names = {member.value for member in allowed}
    if any(value not in names for value in wanted):
        raise ValidationFailed(field, f"must be among {', '.join(sorted(names))}")
    return tuple(dict.fromkeys(wanted))
