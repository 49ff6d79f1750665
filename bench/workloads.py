"""The request files wrk's Lua scripts read: one request per line, built here from a manifest.

Format (see bench/lua/common.lua): thread, method, path, headers, body; tab-separated,
headers separated by the ASCII record separator.
"""

import random
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import orjson

from bench.manifest import PaymentSeed, TenantSeed
from tenvoice.gateway.signing import sign
from tenvoice.gateway.simulator import DEFAULT_TOKEN, webhook_body
from tenvoice.platform.money import format_minor

RECORD_SEPARATOR = "\x1e"
JSON = {"Content-Type": "application/json"}
LIST_OPEN = "/api/invoices?status=open&limit=50"
PAGE_SIZE = 50


@dataclass(frozen=True, slots=True)
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: str = ""
    thread: int | None = None  # None: any wrk thread may send it

    def line(self) -> str:
        headers = RECORD_SEPARATOR.join(f"{k}: {v}" for k, v in self.headers.items())
        fields = ("*" if self.thread is None else str(self.thread), self.method, self.path)
        for value in (*fields, headers, self.body):
            if "\t" in value or "\n" in value:
                raise ValueError(f"a request field holds a tab or newline: {value[:80]!r}")
        return "\t".join((*fields, headers, self.body))


def write_requests(path: Path, requests: Iterable[Request]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(r.line() + "\n" for r in requests))
    return path


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def invoice_body(customer_id: str, rng: random.Random) -> str:
    """W1's body: 3 items, finalized in the same request (timeline and outbox rows too)."""
    items = [
        {
            "description": f"Item {n}",
            "quantity": rng.randint(1, 5),
            "unitPrice": f"{rng.randint(100, 99_999) / 100:.2f}",
        }
        for n in range(3)
    ]
    return orjson.dumps({"customerId": customer_id, "items": items, "finalize": True}).decode()


def create_invoices(tenants: Sequence[TenantSeed], count: int, seed: int = 1) -> list[Request]:
    rng = random.Random(seed)
    picks = [rng.choice(tenants) for _ in range(count)]
    return [
        Request(
            "POST",
            "/api/invoices",
            {**bearer(t.api_key), **JSON},
            invoice_body(t.customer_id, rng),
        )
        for t in picks
    ]


def list_first_pages(tenants: Sequence[TenantSeed]) -> list[Request]:
    return [Request("GET", LIST_OPEN, bearer(t.api_key)) for t in tenants]


def get_invoices(tenants: Sequence[TenantSeed]) -> list[Request]:
    return [
        Request("GET", f"/api/invoices/{invoice_id}", bearer(t.api_key))
        for t in tenants
        for invoice_id in t.invoice_ids
    ]


def one(key: str, path: str) -> list[Request]:
    return [Request("GET", path, bearer(key))]


# -- W4: signed webhooks -----------------------------------------------------------------


@dataclass
class WebhookPlan:
    """Which webhook ids settle which payment, and how many requests repeat an earlier one."""

    requests: list[Request] = field(default_factory=list)
    payment_of: dict[str, str] = field(default_factory=dict)  # webhook id -> payment id
    repeats: int = 0


def webhook_payload(payment: PaymentSeed) -> bytes:
    """The body the simulated gateway itself sends for a successful charge of `payment`."""
    return webhook_body(
        {
            "paymentId": payment.id,
            "amount": format_minor(payment.amount, payment.currency),
            "currency": payment.currency,
            "paymentToken": DEFAULT_TOKEN,
        }
    )


def signed_webhook(secret: str, webhook_id: str, body: bytes, thread: int | None) -> Request:
    headers = sign(secret, webhook_id, int(time.time()), body)
    return Request(
        "POST", "/api/webhooks/payments", {**headers, **JSON}, body.decode(), thread=thread
    )


def webhooks(
    payments: Sequence[PaymentSeed],
    secret: str,
    *,
    threads: int,
    repeat_share: float = 0.2,
    seed: int = 1,
    tag: str = "",
) -> WebhookPlan:
    """Each payment's success webhook once, plus `repeat_share` exact repeats (same id, body
    and signature). Payments are dealt to wrk's threads, and each thread sends its lines in
    order, so every repeat follows its first delivery; most follow closely, as a gateway's
    retries do, and some race it on another connection. Signed now: the signatures hold for
    the next 5 minutes."""
    rng = random.Random(seed)
    plan = WebhookPlan()
    repeat_chance = repeat_share / (1 - repeat_share)  # repeats per unique delivery
    tag = tag or uuid.uuid4().hex[:8]
    for thread in range(threads):
        sent: list[Request] = []
        for n, payment in enumerate(payments[thread::threads]):
            webhook_id = f"msg_bench_{tag}_{thread}_{n}"
            plan.payment_of[webhook_id] = payment.id
            first = signed_webhook(secret, webhook_id, webhook_payload(payment), thread)
            sent.append(first)
            plan.requests.append(first)
            if rng.random() < repeat_chance:
                plan.requests.append(rng.choice(sent[-200:]))
                plan.repeats += 1
    return plan


# -- W2b: a page deep in the whale's open invoices ----------------------------------------


def cursor_for_page(created_at: object, invoice_id: uuid.UUID) -> str | None:
    """The cursor the API hands out after the row (created_at, id) in the default sort, or
    None if the app's cursor code has moved on: the runner then walks to the page."""
    try:
        from tenvoice.invoices.queries import DEFAULT_SORT, SORTS
        from tenvoice.platform.pagination import encode_cursor

        return encode_cursor(SORTS[DEFAULT_SORT], created_at, invoice_id)
    except Exception:
        return None


async def walk_to_page(client: httpx.AsyncClient, key: str, page: int) -> str:
    """The cursor of page `page` (of 50) by walking there through the API: slow, but it needs
    nothing but the API, for when the shortcut's cursor does not match."""
    before = (page - 1) * PAGE_SIZE
    cursor: str | None = None
    walked = 0
    while walked < before:
        step = min(100, before - walked)
        query = f"/api/invoices?status=open&limit={step}" + (f"&cursor={cursor}" if cursor else "")
        response = await client.get(query, headers=bearer(key))
        response.raise_for_status()
        cursor = response.json()["pagination"]["nextCursor"]
        walked += step
        if cursor is None:
            raise RuntimeError(f"the whale has fewer than {before} open invoices")
    assert cursor is not None
    return cursor


async def page_ids(client: httpx.AsyncClient, key: str, query: str) -> list[str]:
    response = await client.get(query, headers=bearer(key))
    response.raise_for_status()
    return [row["id"] for row in response.json()["data"]]
