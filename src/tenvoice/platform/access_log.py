"""One access line per request, written once its response is done (API.md "Operations").

The line names the route template, never the path: a hosted invoice's path is its secret
token, and query strings are the client's to keep. A plain ASGI middleware: one closure and
one log call per request.
"""

import logging
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tenvoice.platform import logs
from tenvoice.platform.metrics import UNMATCHED
from tenvoice.platform.metrics_http import TEMPLATE_SCOPE_KEY

access = logging.getLogger("tenvoice.access")


class AccessLogMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        # What the client gets when the app raises before answering (the 500 is rendered
        # further out, by Starlette's outermost layer).
        status = 500

        async def send_noting_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        with logs.log_context() as fields:
            scope[logs.SCOPE_KEY] = fields
            try:
                await self.app(scope, receive, send_noting_status)
            finally:
                if access.isEnabledFor(logging.INFO):
                    access.info("request", extra=_line(scope, status, started))


def _line(scope: Scope, status: int, started: float) -> dict[str, object]:
    client = scope.get("client")
    # The metrics layer (inside this one) names every request's template, those answered
    # before routing (replays, 413, 415, 429) included; a path no route knows has none, and
    # its raw form is not logged either.
    template = scope.get(TEMPLATE_SCOPE_KEY) or getattr(scope.get("route"), "path", None)
    return {
        "method": scope["method"],
        "route": None if template == UNMATCHED else template,
        "status": status,
        "duration_ms": round((time.perf_counter() - started) * 1000, 2),
        "client": client[0] if client else None,
    }
