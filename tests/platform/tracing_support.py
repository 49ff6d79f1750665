"""Shared steps of the tracing tests: the payment flow the whole way, and reading spans."""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import httpx
from opentelemetry.sdk.trace import ReadableSpan

from tests.conftest import ADMIN_KEY, TenantHandle, make_customer, make_invoice, make_tenant
from tests.live import LiveServer, eventually
from tests.webhooks.receivers import Receiver

ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}"}


@dataclass(frozen=True)
class Flow:
    tenant: TenantHandle
    endpoint: dict[str, Any]
    invoice: dict[str, Any]
    payment: httpx.Response


async def pay_an_invoice(live: LiveServer, receiver: Receiver, **headers: str) -> Flow:
    """A tenant with an endpoint for invoice.paid pays an invoice; returns once the
    receiver has the webhook."""
    tenant = await make_tenant(live.client, ADMIN, "Acme", defaultTaxRate="11")
    body = {"url": receiver.url(), "enabledEvents": ["invoice.paid"]}
    response = await live.client.post("/api/webhook-endpoints", json=body, headers=tenant.headers)
    assert response.status_code == 201, response.text
    customer = await make_customer(live.client, tenant)
    invoice = await make_invoice(live.client, tenant, customer["id"], finalize=True)
    payment = await live.client.post(
        "/api/payments",
        json={"invoiceId": invoice["id"], "amount": invoice["total"], "method": "card"},
        headers={**tenant.headers, **headers},
    )
    assert payment.status_code == 201, payment.text

    async def delivered() -> bool:
        return len(receiver.received) >= 1

    await eventually(delivered)
    return Flow(tenant, response.json(), invoice, payment)


def named(spans: Iterable[ReadableSpan], name: str) -> list[ReadableSpan]:
    return [span for span in spans if span.name == name]


def one(spans: Iterable[ReadableSpan], name: str) -> ReadableSpan:
    found = named(spans, name)
    assert len(found) == 1, (name, [span.name for span in spans])
    return found[0]


def children(spans: Iterable[ReadableSpan], parent: ReadableSpan) -> list[ReadableSpan]:
    assert parent.context is not None
    return [
        span
        for span in spans
        if span.parent is not None and span.parent.span_id == parent.context.span_id
    ]


def trace_id(span: ReadableSpan) -> int:
    assert span.context is not None
    trace: int = span.context.trace_id
    return trace


def leaked(spans: Sequence[ReadableSpan], secrets: Iterable[str]) -> list[tuple[str, str]]:
    """(span, attribute) pairs whose value holds any of `secrets`, events and links too."""
    found = []
    for span in spans:
        values: list[tuple[str, Any]] = [("name", span.name)]
        values += list((span.attributes or {}).items())
        values += list(span.resource.attributes.items())
        for event in span.events:
            values += list((event.attributes or {}).items())
        for key, value in values:
            text = str(value)
            if any(secret in text for secret in secrets):
                found.append((span.name, key))
    return found
