"""Rate limits (API.md "Rate limits"): budgets per credential, per tenant, per client address.

A plain ASGI middleware spends the request's budgets before anything else reads it; over
budget it answers 429 itself, so a refused request never reaches a route and changes nothing.
Every answer of a limited route carries the IETF fields (draft-ietf-httpapi-ratelimit-headers,
structured-field syntax): `RateLimit-Policy` names every budget the request spent,
`RateLimit` the one closest to running out.

Who is calling is not this module's business (the platform does not import capabilities):
`caller_of`, injected by `create_app`, says which credential and tenant a request uses.
"""

import functools
import logging
import math
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from prometheus_client import Counter
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from limits import RateLimitItem, parse
from tenvoice.config import Settings, SettingsError
from tenvoice.platform.http import DEPENDENCY_ERRORS, problem
from tenvoice.platform.ratelimit_store import Count, Counters, whole_seconds

log = logging.getLogger("tenvoice.ratelimit")

RATE_LIMITED = Counter(
    "tenvoice_rate_limited_total", "Requests refused with 429, by the budget spent", ["policy"]
)
# Operations and documentation: probes and scrapers must never be refused.
UNLIMITED = frozenset(
    {"/healthz", "/readyz", "/metrics", "/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json"}
)
HOSTED_PREFIX = "/hosted/"
GATEWAY_WEBHOOK = "/api/webhooks/payments"
# How many times a credential's budget a tenant's keys share when nothing else is set.
TENANT_MULTIPLE = 4


@dataclass(frozen=True, slots=True)
class Caller:
    """Who spends a request's budgets; never the secret itself."""

    credential: str  # "admin", or "key:" and the API key's id
    tenant: str | None = None  # the tenant whose shared budget a tenant key also spends
    tenant_limit: str | None = None  # that tenant's own budget, when the admin set one


# None: the request does not authenticate (the route will refuse it).
CallerOf = Callable[[Request], Awaitable[Caller | None]]


@dataclass(frozen=True, slots=True)
class Budget:
    policy: str  # its name in the RateLimit fields
    item: RateLimitItem
    key: str  # its counter in the store: the policy, the subject and the budget itself


@functools.lru_cache(maxsize=1024)
def parse_budget(notation: str) -> RateLimitItem:
    """A budget in the `limits` notation ("100/second"); ValueError if it is not one."""
    item = parse(notation)
    if item.amount < 1:
        raise ValueError(f"a budget of {item.amount} admits nothing")
    return item


class Budgets:
    """The configured budgets, parsed once."""

    def __init__(self, settings: Settings) -> None:
        self.credential = _setting("RATE_LIMIT", settings.rate_limit)
        credential = self.credential
        self.tenant = (
            _setting("TENANT_RATE_LIMIT", settings.tenant_rate_limit)
            if settings.tenant_rate_limit
            else type(credential)(credential.amount * TENANT_MULTIPLE, credential.multiples)
        )
        self.hosted = _setting("HOSTED_RATE_LIMIT", settings.hosted_rate_limit)
        self.webhook = _setting("WEBHOOK_RATE_LIMIT", settings.webhook_rate_limit)

    def of_tenant(self, own: str | None) -> RateLimitItem:
        if own is None:
            return self.tenant
        try:
            return parse_budget(own)
        except ValueError:
            # Only valid budgets are stored; one that is not must not lock the tenant out.
            log.warning("a tenant's stored rate limit %r is not a budget; using the default", own)
            return self.tenant


def _setting(name: str, notation: str) -> RateLimitItem:
    try:
        return parse_budget(notation)
    except ValueError:
        raise SettingsError(
            f"TENVOICE_{name}={notation!r} is not a budget: write it as N/second or N/minute."
        ) from None


def budget(policy: str, item: RateLimitItem, subject: str) -> Budget:
    return Budget(policy, item, item.key_for(policy, subject))


class RateLimitMiddleware:
    def __init__(
        self, app: ASGIApp, *, budgets: Budgets, counters: Counters, caller_of: CallerOf
    ) -> None:
        self.app = app
        self._budgets = budgets
        self._counters = counters
        self._caller_of = caller_of

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in UNLIMITED:
            await self.app(scope, receive, send)
            return
        budgets = await self._spent_by(scope)
        # A refused request is counted too (as `limits`' fixed window counts it): checking
        # first and spending after would cost a second round trip and race other processes.
        counts = await self._counters.hit([(b.item, b.key) for b in budgets])
        if counts is None:  # the store is down: let it through, unlimited (API.md)
            await self.app(scope, receive, send)
            return
        fields = _fields(budgets, counts)
        refused = [(b, c) for b, c in zip(budgets, counts, strict=True) if c.used > b.item.amount]
        if refused:
            await _too_many(refused, fields)(scope, receive, send)
            return

        async def send_with_fields(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *fields]
            await send(message)

        await self.app(scope, receive, send_with_fields)

    async def _spent_by(self, scope: Scope) -> list[Budget]:
        path: str = scope["path"]
        address = _client_address(scope)
        if path.startswith(HOSTED_PREFIX):
            return [budget("hosted", self._budgets.hosted, address)]
        if path == GATEWAY_WEBHOOK:
            return [budget("webhook", self._budgets.webhook, address)]
        try:
            caller = await self._caller_of(Request(scope))
        except DEPENDENCY_ERRORS:
            caller = None  # the database is down; the route answers 503 on its own
        if caller is None:
            # A request without a valid credential is refused by the route, but only after a
            # key lookup (unknown keys are never cached), so a flood of made-up keys would be
            # a flood of database reads: the client's address gets a credential's budget.
            return [budget("anonymous", self._budgets.credential, address)]
        spent = [budget("credential", self._budgets.credential, caller.credential)]
        if caller.tenant is not None:
            item = self._budgets.of_tenant(caller.tenant_limit)
            spent.append(budget("tenant", item, caller.tenant))
        return spent


def _client_address(scope: Scope) -> str:
    # The peer as the server saw it; behind a proxy, uvicorn's --forwarded-allow-ips makes
    # that the original client (from X-Forwarded-For) for proxies it trusts, and only those.
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


def _fields(budgets: Sequence[Budget], counts: Sequence[Count]) -> list[tuple[bytes, bytes]]:
    policies = ", ".join(f'"{b.policy}";q={b.item.amount};w={b.item.get_expiry()}' for b in budgets)
    remaining = [max(0, b.item.amount - c.used) for b, c in zip(budgets, counts, strict=True)]
    # The budget closest to running out; of two equally close, the one that waits longer.
    tightest = min(range(len(budgets)), key=lambda i: (remaining[i], -counts[i].reset))
    left = f'"{budgets[tightest].policy}";r={remaining[tightest]};t={_reset(counts[tightest])}'
    return [(b"ratelimit-policy", policies.encode()), (b"ratelimit", left.encode())]


def _reset(count: Count) -> int:
    return max(0, math.ceil(count.reset))


def _too_many(
    refused: Sequence[tuple[Budget, Count]], fields: list[tuple[bytes, bytes]]
) -> Response:
    # Every refusing budget must have room again before a retry can pass.
    spent, count = max(refused, key=lambda pair: pair[1].reset)
    RATE_LIMITED.labels(spent.policy).inc()
    retry_after = whole_seconds(count.reset)
    response = problem(
        429,
        "rate_limited",
        "Too many requests",
        f"The {spent.policy} budget ({spent.item}) is spent; retry in {retry_after} s.",
        headers={"Retry-After": str(retry_after)},
    )
    response.raw_headers.extend(fields)
    return response
