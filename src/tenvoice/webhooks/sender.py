"""One delivery attempt: a signed POST to the endpoint, at the address the SSRF guard resolved.

The body is built from the stored event alone, so it is byte for byte the same on every
attempt and for every endpoint; only `webhook-timestamp` and the signatures change. What the
receiver answers is read up to 1 KiB and no further (API.md), so a receiver that streams a
large or endless body costs nothing.
"""

import asyncio
import email.utils
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import orjson

from tenvoice.gateway.signing import secret_key, signature
from tenvoice.platform.db import utcnow
from tenvoice.platform.host_pools import HostPools
from tenvoice.webhooks.ssrf import InvalidWebhookUrl, Resolver, Target, resolve, system_resolver

USER_AGENT = "tenvoice-webhooks/1"
TIMEOUT_SECONDS = 15.0
BODY_LIMIT = 1024
REFUSED = "refused: not a public address"
_ERROR_LIMIT = 500
_TIMEOUTS = httpx.Timeout(TIMEOUT_SECONDS).as_dict()
RESOLVE_EVERY_SECONDS = 5.0
# Statuses whose Retry-After a sender should honour (RFC 9110 section 10.2.3).
_RETRY_AFTER_STATUSES = frozenset({429, 503})


@dataclass(frozen=True, slots=True)
class Message:
    """What every attempt of one event sends: its id (webhook-id) and its JSON body."""

    id: str
    body: bytes


def message(
    event_id: uuid.UUID, event_type: str, occurred_at: datetime, data: dict[str, Any]
) -> Message:
    document = {
        "id": str(event_id),
        "type": event_type,
        "timestamp": occurred_at.astimezone(UTC),
        "data": data,
    }
    # OPT_UTC_Z: timestamps as the API writes them, UTC with a `Z`.
    return Message(str(event_id), orjson.dumps(document, option=orjson.OPT_UTC_Z))


@dataclass(frozen=True, slots=True)
class Outcome:
    at: datetime
    duration_ms: int
    status: int | None = None
    error: str | None = None
    body: str | None = None
    # Seconds a 429 or 503 asked us to wait, if it said.
    retry_after: float | None = None

    @property
    def succeeded(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


def signatures(secrets: Sequence[str], message_id: str, timestamp: int, body: bytes) -> str:
    """`v1,<sig>` per live secret, space-separated: a receiver that knows either secret
    accepts the delivery while a rotation is under way."""
    return " ".join(
        "v1," + signature(secret_key(secret), message_id, timestamp, body) for secret in secrets
    )


class Route:
    """An endpoint's URL and the address its deliveries go to, resolved and checked by the
    SSRF guard again every few seconds rather than per delivery: a name lookup can cost
    more than the delivery, and whichever answer is used has passed the guard."""

    def __init__(self, url: str, *, allow_private: bool, resolver: Resolver | None) -> None:
        self.url = url
        self.allow_private = allow_private
        self.resolver = resolver or system_resolver
        self._target: Target | None = None
        self._resolved_at = 0.0

    async def target(self) -> Target:
        now = time.monotonic()
        if self._target is None or now - self._resolved_at >= RESOLVE_EVERY_SECONDS:
            self._target = await resolve(
                httpx.URL(self.url), allow_private=self.allow_private, resolver=self.resolver
            )
            self._resolved_at = now
        return self._target


async def send(pools: HostPools, route: Route, sent: Message, secrets: Sequence[str]) -> Outcome:
    at = utcnow()
    started = time.perf_counter()

    def outcome(**fields: Any) -> Outcome:
        return Outcome(at, round((time.perf_counter() - started) * 1000), **fields)

    try:
        # 15 s for the whole attempt, name resolution included (httpx's own timeouts are
        # per read or write, so a receiver trickling bytes would never time out).
        async with asyncio.timeout(TIMEOUT_SECONDS):
            target = await route.target()
            status, retry_after, body = await _post(pools, target, sent, secrets)
    except InvalidWebhookUrl as exc:
        return outcome(error=_refusal(exc))
    except (TimeoutError, httpx.TimeoutException):
        return outcome(error=f"timeout: no answer within {TIMEOUT_SECONDS:.0f} s")
    except (httpx.HTTPError, OSError, ValueError) as exc:
        return outcome(error=_describe(exc))
    waited = retry_after_seconds(retry_after, utcnow()) if status in _RETRY_AFTER_STATUSES else None
    return outcome(status=status, body=_text(body), retry_after=waited)


async def _post(
    pools: HostPools, target: Target, sent: Message, secrets: Sequence[str]
) -> tuple[int, str | None, bytes]:
    timestamp = int(time.time())
    headers = {
        # The URL's own host, though the connection goes to the address resolved above.
        "host": target.url.netloc.decode("ascii"),
        "webhook-id": sent.id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signatures(secrets, sent.id, timestamp, sent.body),
        "content-type": "application/json",
        "user-agent": USER_AGENT,
        # Raw bytes are counted against the 1 KiB; a compressed answer could expand past it.
        "accept-encoding": "identity",
    }
    request = httpx.Request(
        "POST",
        target.connect_url,
        content=sent.body,
        headers=headers,
        # TLS checks the certificate against the URL's name, not the address.
        extensions={"sni_hostname": target.host, "timeout": _TIMEOUTS},
    )
    # Straight to the transport: the client's layers (cookies, auth, redirects, event hooks)
    # have nothing to do for a webhook, and cost a third of a delivery's CPU. Redirects are
    # therefore never followed: a 3xx is an answer like any other.
    response = await pools.for_url(target.url).handle_async_request(request)
    try:
        kept = bytearray()
        async for chunk in response.aiter_raw():
            kept += chunk
            if len(kept) >= BODY_LIMIT:
                break  # closing the response closes the connection; the rest is never read
    finally:
        await response.aclose()
    return response.status_code, response.headers.get("retry-after"), bytes(kept)


def retry_after_seconds(value: str | None, now: datetime) -> float | None:
    """Retry-After as seconds from `now`: delta-seconds or an HTTP date (RFC 9110 10.2.3)."""
    if not value:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():
        return float(int(value[:12]))
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())


def _refusal(error: InvalidWebhookUrl) -> str:
    # The guard says why in a sentence meant for the person saving the URL; the attempt log
    # keeps a short, stable reason.
    if error.detail.endswith("not a public address."):
        return REFUSED
    return f"refused: {error.detail}"[:_ERROR_LIMIT]


def _text(body: bytes) -> str | None:
    if not body:
        return None
    # PostgreSQL text holds no NUL character.
    return body[:BODY_LIMIT].decode("utf-8", errors="replace").replace("\x00", "\ufffd")


def _describe(error: BaseException) -> str:
    text = str(error)
    kind = type(error).__name__
    return (f"{kind}: {text}" if text else kind)[:_ERROR_LIMIT]
