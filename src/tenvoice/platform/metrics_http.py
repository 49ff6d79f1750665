"""Requests counted by route template, the ones answered before routing included.

A replayed POST (the idempotency layer), a body refused by the guards (413, 415) or a
request the rate limiter turns away (429) is answered before the router runs, so the
request carries no route. Such a request is matched against the app's routes here; what
no route matches stays `unmatched`. The path never becomes a label: ids would make every
invoice its own series.
"""

import time
from collections.abc import Sequence

from fastapi.routing import iter_route_contexts
from starlette.routing import BaseRoute, compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tenvoice.platform.metrics import LATENCY, REPLAYS, REQUESTS, UNMATCHED

_REPLAYED = (b"idempotent-replayed", b"true")
# Where the template is left for the layers outside this one (the access line), so that a
# request answered before routing is named there too, without matching it twice.
TEMPLATE_SCOPE_KEY = "tenvoice.route_template"
# Distinct (method, path shape) pairs remembered; past it, a lookup is simply not kept.
_CACHE_LIMIT = 4096


class RouteTemplates:
    """The route template a request's path matches, cached by the path's shape.

    The shape keeps every segment some route spells literally and turns any other into
    `*`: two paths of one shape differ only where a route has a parameter, so they match
    the same route, and the cache holds a bounded set of shapes, not of paths.
    """

    def __init__(self, routes: Sequence[BaseRoute]) -> None:
        # FastAPI keeps included routers' routes behind a container; these are the routes
        # as requests see them, full paths included (as http.py's Allow header reads them).
        self._routes = [
            (compile_path(context.path)[0], context.methods, context.path)
            for context in iter_route_contexts(routes)
            if context.path is not None
        ]
        self._literals = {
            part for *_, path in self._routes for part in path.split("/") if "{" not in part
        }
        self._cache: dict[tuple[str, str], str] = {}

    def of(self, scope: Scope) -> str:
        path: str = scope["path"]
        shape = "/".join(part if part in self._literals else "*" for part in path.split("/"))
        key = (scope["method"], shape)
        template = self._cache.get(key)
        if template is None:
            template = self._match(scope["method"], path)
            if len(self._cache) < _CACHE_LIMIT:
                self._cache[key] = template
        return template

    def _match(self, method: str, path: str) -> str:
        other_method = None
        for regex, methods, template in self._routes:
            if regex.match(path):
                if methods is None or method in methods:
                    return template
                other_method = other_method or template  # answered 405 on this route
        return other_method or UNMATCHED


class MetricsMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._templates: RouteTemplates | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500
        replayed = False

        async def observe(message: Message) -> None:
            nonlocal status, replayed
            if message["type"] == "http.response.start":
                status = message["status"]
                replayed = _REPLAYED in message.get("headers", ())
            await send(message)

        try:
            await self.app(scope, receive, observe)
        finally:
            template = scope[TEMPLATE_SCOPE_KEY] = self._template(scope)
            REQUESTS.labels(scope["method"], template, str(status)).inc()
            LATENCY.labels(scope["method"], template).observe(time.perf_counter() - started)
            if replayed:
                REPLAYS.labels(template).inc()

    def _template(self, scope: Scope) -> str:
        route = scope.get("route")
        if route is not None:
            return str(getattr(route, "path", UNMATCHED))
        if self._templates is None:
            # The app's routes are complete once it serves; the first request reads them.
            self._templates = RouteTemplates(scope["app"].routes)
        return self._templates.of(scope)
