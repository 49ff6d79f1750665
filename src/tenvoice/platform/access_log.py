"""One access line per request, written once its response is done (API.md "Operations").

The line names the route template, never the path: a hosted invoice's path is its secret
token, and query strings are the client's to keep. A plain ASGI middleware: one closure and
one log call per request.
"""

import logging
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tenvoice.platform import logs

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
    return {
        "method": scope["method"],
        # Set by the router once a route matched (or matched all but the method); absent for
        # a path no route knows, whose raw form is not logged either.
        "route": getattr(scope.get("route"), "path", None),
        "status": status,
        "duration_ms": round((time.perf_counter() - started) * 1000, 2),
        "client": client[0] if client else None,
    }
