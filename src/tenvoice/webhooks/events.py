import uuid
from dataclasses import dataclass
from typing import ClassVar


@dataclass(frozen=True, slots=True)
class _EndpointEvent:
    entity_type: ClassVar[str] = "webhook_endpoint"
    endpoint_id: uuid.UUID

    @property
    def entity_id(self) -> uuid.UUID:
        return self.endpoint_id

    @property
    def stream_id(self) -> uuid.UUID:
        return self.endpoint_id


@dataclass(frozen=True, slots=True)
class WebhookEndpointDisabled(_EndpointEvent):
    event_type: ClassVar[str] = "webhook_endpoint.disabled"
    reason: str


@dataclass(frozen=True, slots=True)
class WebhookEndpointTested(_EndpointEvent):
    """Sent to its own endpoint only (POST .../test), never fanned out."""

    event_type: ClassVar[str] = "webhook_endpoint.test"
