import uuid
from dataclasses import dataclass
from typing import ClassVar


@dataclass(frozen=True, slots=True)
class _CustomerEvent:
    entity_type: ClassVar[str] = "customer"
    customer_id: uuid.UUID

    @property
    def entity_id(self) -> uuid.UUID:
        return self.customer_id

    @property
    def stream_id(self) -> uuid.UUID:
        return self.customer_id


@dataclass(frozen=True, slots=True)
class CustomerCreated(_CustomerEvent):
    event_type: ClassVar[str] = "customer.created"
    name: str
    email: str


@dataclass(frozen=True, slots=True)
class CustomerUpdated(_CustomerEvent):
    event_type: ClassVar[str] = "customer.updated"
    changed: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class CustomerDeleted(_CustomerEvent):
    event_type: ClassVar[str] = "customer.deleted"
