from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

from pydantic import AfterValidator, Field, WithJsonSchema, field_validator

from tenvoice.events.catalog import EVENT_TYPES, EVERYTHING, is_known_pattern, prefix_pattern
from tenvoice.platform.schemas import InputModel, Metadata, OutputModel
from tenvoice.webhooks.models import EndpointStatus, WebhookEndpoint

MAX_URL_LENGTH = 2048
# Every entry enabledEvents takes: each type, each `prefix.*` and `*`.
KNOWN_PATTERNS = sorted({EVERYTHING, *EVENT_TYPES, *(prefix_pattern(t) for t in EVENT_TYPES)})


def _known(pattern: str) -> str:
    if not is_known_pattern(pattern):
        raise ValueError(
            f"{pattern!r} is not an event type, a `prefix.*` of one, or `*` "
            "(see the Events API for the types)"
        )
    return pattern


def _unique(patterns: list[str]) -> list[str]:
    seen: set[str] = set()
    for pattern in patterns:
        if pattern in seen:
            raise ValueError(f"{pattern!r} is listed twice")
        seen.add(pattern)
    return patterns


EventPattern = Annotated[
    str,
    AfterValidator(_known),
    WithJsonSchema({"type": "string", "enum": KNOWN_PATTERNS}),
]
EnabledEvents = Annotated[
    list[EventPattern],
    Field(min_length=1, json_schema_extra={"uniqueItems": True}),
    AfterValidator(_unique),
]
# Where the endpoint must answer: https, on a public address (checked when saved, and again
# each time a delivery connects).
Url = Annotated[
    str,
    Field(
        min_length=1,
        max_length=MAX_URL_LENGTH,
        json_schema_extra={"format": "uri"},
        description="An https:// URL that resolves to public addresses only; anything else "
        "is 422 invalid_webhook_url.",
    ),
]
Description = Annotated[str, Field(max_length=500)]


class WebhookEndpointCreate(InputModel):
    url: Url
    enabled_events: EnabledEvents
    description: Description | None = None
    metadata: Metadata = Field(default_factory=dict)


class WebhookEndpointPatch(InputModel):
    # Null clears the description and the metadata; an endpoint always has a URL, events
    # and a status.
    not_null = frozenset({"url", "enabled_events", "status"})

    url: Url | None = None
    enabled_events: EnabledEvents | None = None
    description: Description | None = None
    metadata: Metadata | None = None
    status: Annotated[
        EndpointStatus | None,
        Field(description="`enabled` re-enables a disabled endpoint; `disabled` disables it."),
    ] = None

    @field_validator("metadata")
    @classmethod
    def _null_clears(cls, value: dict[str, str] | None) -> dict[str, str]:
        return {} if value is None else value


class RotateSecretIn(InputModel):
    expire_current_in_hours: Annotated[
        int,
        Field(
            ge=0,
            le=24,
            description="How long the current secret keeps signing beside the new one; "
            "0 stops it at once.",
        ),
    ] = 24


class WebhookEndpointOut(OutputModel):
    id: UUID
    url: str
    description: str | None
    enabled_events: list[str]
    status: EndpointStatus
    disabled_reason: str | None
    metadata: dict[str, str]
    created_at: datetime
    updated_at: datetime


class WebhookEndpointCreated(WebhookEndpointOut):
    secret: str = Field(description="The signing secret (`whsec_...`), shown only here.")


class SecretOut(OutputModel):
    secret: str = Field(description="The new signing secret (`whsec_...`), shown only here.")


class QueuedTest(OutputModel):
    delivery_id: UUID


def endpoint_view(endpoint: WebhookEndpoint) -> WebhookEndpointOut:
    return WebhookEndpointOut(
        id=endpoint.id,
        url=endpoint.url,
        description=endpoint.description,
        enabled_events=list(endpoint.enabled_events),
        status=EndpointStatus(endpoint.status),
        disabled_reason=endpoint.disabled_reason,
        metadata=endpoint.metadata_,
        created_at=endpoint.created_at,
        updated_at=endpoint.updated_at,
    )


def endpoint_json(endpoint: WebhookEndpoint) -> dict[str, Any]:
    """The endpoint as GET returns it, for an event's `data.object`."""
    return endpoint_view(endpoint).model_dump(mode="json")


async def endpoint_snapshot(endpoint: WebhookEndpoint, _session: object) -> dict[str, Any]:
    return endpoint_json(endpoint)
