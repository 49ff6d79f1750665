"""The HTTP edge: problem+json for every error, request ids, body limits, content types.

The middlewares are plain ASGI (no BaseHTTPMiddleware) so they cost a function call per
request, not a task.
"""

import logging
import re
import uuid
from collections.abc import Sequence
from typing import Any

import asyncpg
import orjson
import sqlalchemy.exc
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.routing import iter_route_contexts
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.routing import compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tenvoice.platform import logs
from tenvoice.platform.errors import AppError, FieldError
from tenvoice.platform.tenancy import current_request_id

log = logging.getLogger("tenvoice.http")

PROBLEM_JSON = "application/problem+json"
_REQUEST_ID_OK = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")
_REQUEST_ID_SCOPE_KEY = "tenvoice.request_id"
_HTTP_CODES = {
    400: ("bad_request", "Bad request"),
    401: ("unauthorized", "Missing or invalid credentials"),
    403: ("forbidden", "Not allowed"),
    404: ("not_found", "Not found"),
    405: ("method_not_allowed", "Method not allowed"),
    409: ("conflict", "State conflict"),
    413: ("payload_too_large", "Request body too large"),
    415: ("unsupported_media_type", "Unsupported media type"),
    422: ("validation_failed", "Validation failed"),
    429: ("rate_limited", "Too many requests"),
    500: ("internal_error", "Internal server error"),
    503: ("service_unavailable", "A dependency is unavailable"),
}


class WireJSON(Response):
    """A response body already in its wire form (camelCase dicts), encoded by orjson.

    For the hottest responses: building pydantic models only to serialize them again cost
    more than the rest of a list request. The route's `response_model` still documents it.
    """

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        # OPT_UTC_Z writes UTC as "Z", exactly as the pydantic models serialize it.
        return orjson.dumps(content, default=_wire_default, option=orjson.OPT_UTC_Z)


def _wire_default(value: Any) -> str:
    # asyncpg decodes uuid columns to its own subclass of uuid.UUID, which orjson (exact
    # types only) does not encode by itself.
    if isinstance(value, uuid.UUID):
        return str(value)
    raise TypeError(f"{type(value).__name__} has no wire form")


def problem_body(
    status: int,
    code: str,
    title: str,
    detail: str,
    errors: Sequence[FieldError] | None = None,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": f"https://tenvoice.dev/problems/{code.replace('_', '-')}",
        "title": title,
        "status": status,
        "detail": detail,
        "code": code,
        "requestId": current_request_id.get(),
    }
    if errors is not None:
        body["errors"] = [{"field": e.field, "message": e.message} for e in errors]
    return body


def problem(
    status: int,
    code: str,
    title: str,
    detail: str,
    errors: Sequence[FieldError] | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    response = Response(
        orjson.dumps(problem_body(status, code, title, detail, errors)),
        status_code=status,
        media_type=PROBLEM_JSON,
        headers=headers,
    )
    request_id = current_request_id.get()
    if request_id:
        response.headers["X-Request-Id"] = request_id
    return response


def problem_for_status(status: int, detail: str | None = None) -> Response:
    code, title = _HTTP_CODES.get(status, ("error", "Error"))
    return problem(status, code, title, detail or title)


async def _app_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, AppError)
    headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
    return problem(exc.status, exc.code, exc.title, exc.detail, exc.errors, headers)


async def _validation_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    errors = list(exc.errors())
    if any(e.get("loc", ("",))[0] == "path" for e in errors):
        # A malformed id names nothing that exists, like any unknown id.
        return problem(404, "not_found", "Not found", "No such resource.")
    if any(e.get("type") == "json_invalid" for e in errors):
        return _malformed_json()
    fields = [FieldError(field_path(e.get("loc", ())), _message(e)) for e in errors]
    return problem(422, "validation_failed", "Validation failed", _summary(fields), fields)


def _malformed_json() -> Response:
    return problem(400, "malformed_json", "Malformed JSON", "The request body is not valid JSON.")


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 400 and isinstance(exc.__cause__, UnicodeDecodeError):
        # FastAPI decodes the body before parsing it and reports bytes that are not UTF-8
        # as a bare 400; such a body is no more JSON than a stray brace (RFC 8259 section 8.1).
        return _malformed_json()
    headers = dict(exc.headers) if exc.headers else {}
    if exc.status_code == 405:
        headers["Allow"] = ", ".join(sorted(_allowed_methods(request)))
    code, title = _HTTP_CODES.get(exc.status_code, ("error", "Error"))
    if exc.status_code == 404:
        detail = "No such route."
    else:
        detail = exc.detail if isinstance(exc.detail, str) else title
    return problem(exc.status_code, code, title, detail, headers=headers)


async def _unexpected(request: Request, exc: Exception) -> Response:
    # The client learns only that it failed and which request id to report; the cause goes
    # to the log, never to the wire.
    # Starlette renders this from its outermost layer, after RequestIdMiddleware has unwound
    # and reset the contextvar, so the id is recovered from the scope it left behind.
    # The same goes for the request's log fields (its tenant), kept in the scope.
    request_id: str | None = request.scope.get(_REQUEST_ID_SCOPE_KEY)
    token = current_request_id.set(request_id)
    try:
        with logs.log_context(**request.scope.get(logs.SCOPE_KEY, {})):
            log.exception("unhandled error in request %s", request_id, exc_info=exc)
        return problem_for_status(500, "The request failed; report its request id.")
    finally:
        current_request_id.reset(token)


def _allowed_methods(request: Request) -> set[str]:
    """Every method some route answers on this path.

    Starlette stops at the first route whose path matches, so its own Allow header names only
    that route's methods (PUT /api/customers would answer "Allow: POST", hiding GET).
    """
    path = request.url.path
    allowed: set[str] = set()
    for route in iter_route_contexts(request.app.routes):
        if route.path is not None and route.methods and compile_path(route.path)[0].match(path):
            allowed |= route.methods
    return allowed


async def _dependency_down(request: Request, exc: Exception) -> Response:
    return dependency_down(exc)


def dependency_down(exc: Exception) -> Response:
    # Connection refused or lost, pool exhausted, SQLite's lock wait run out: the request
    # may well succeed in a moment, which is what 503 with Retry-After says.
    log.warning("database unavailable: %s", type(exc).__name__)
    return problem(
        503,
        "service_unavailable",
        "A dependency is unavailable",
        "The database is unavailable; retry shortly.",
        headers={"Retry-After": "1"},
    )


# Failures of the database as a service, as opposed to errors in what was asked of it.
# Through SQLAlchemy every such failure arrives as an OperationalError or InterfaceError:
# the engine reclassifies the generic errors asyncpg gives a restarting server
# (db.database_unavailable). asyncpg's own classes cover what is raised around SQLAlchemy.
DEPENDENCY_ERRORS: tuple[type[Exception], ...] = (
    OSError,
    sqlalchemy.exc.OperationalError,
    sqlalchemy.exc.InterfaceError,
    sqlalchemy.exc.TimeoutError,
    asyncpg.PostgresConnectionError,  # 08: connection lost, does not exist, refused
    asyncpg.InsufficientResourcesError,  # 53: too many connections, out of memory or disk
    asyncpg.AdminShutdownError,
    asyncpg.CrashShutdownError,
    asyncpg.CannotConnectNowError,  # starting up, shutting down, in recovery
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,
)


def install_error_handlers(app: FastAPI) -> None:
    for error in DEPENDENCY_ERRORS:
        app.add_exception_handler(error, _dependency_down)
    app.add_exception_handler(AppError, _app_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)


def field_path(loc: Sequence[int | str]) -> str:
    """Pydantic's error location as a wire path.

    ("body", "items", 0, "unitPrice") becomes "items[0].unitPrice".
    """
    parts = list(loc)
    if parts and parts[0] in ("body", "query", "path", "header"):
        parts = parts[1:]
    path = ""
    for part in parts:
        if isinstance(part, int):
            path += f"[{part}]"
        elif isinstance(part, str) and not part.startswith(("function-", "lax-", "json-")):
            path += f".{part}" if path else part
    return path or "body"


def _message(error: Any) -> str:
    message = str(error.get("msg", "invalid value"))
    if error.get("type") == "extra_forbidden":
        return "unknown field"
    return message.removeprefix("Value error, ").removeprefix("Assertion failed, ")


def _summary(fields: list[FieldError]) -> str:
    first = fields[0] if fields else None
    if first is None:
        return "The request is not valid."
    more = f" (and {len(fields) - 1} more)" if len(fields) > 1 else ""
    return f"{first.field}: {first.message}{more}"


class RequestIdMiddleware:
    """Echo a sane client `X-Request-Id` or mint one; every response carries it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = None
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                candidate = value.decode("latin-1")
                if _REQUEST_ID_OK.match(candidate):
                    request_id = candidate
                break
        request_id = request_id or uuid.uuid4().hex
        scope[_REQUEST_ID_SCOPE_KEY] = request_id
        token = current_request_id.set(request_id)
        header = (b"x-request-id", request_id.encode())

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [h for h in message.get("headers", []) if h[0] != b"x-request-id"]
                message["headers"] = [*headers, header]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            current_request_id.reset(token)


class BodyGuardMiddleware:
    """Refuse bodies over the limit (413) and non-JSON bodies (415) before any parsing."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS", "DELETE"):
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        length = headers.get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_bytes):
            await _send(scope, receive, send, _too_large(self.max_bytes))
            return
        content_type = headers.get(b"content-type", b"").split(b";")[0].strip().lower()
        has_body = (length is not None and length != b"0") or b"transfer-encoding" in headers
        if has_body and not _is_json(content_type) and not raw_body_route(scope):
            response = problem(
                415,
                "unsupported_media_type",
                "Unsupported media type",
                "Send the body as application/json.",
            )
            await _send(scope, receive, send, response)
            return

        received = 0
        too_large = False
        started = False

        async def counting_receive() -> Message:
            nonlocal received, too_large
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    # Reported to the app as a disconnect so it stops reading; the 413 is ours.
                    too_large = True
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if too_large:
                return
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, guarded_send)
        except Exception:
            if not too_large:
                raise
        if too_large and not started:
            await _too_large(self.max_bytes)(scope, receive, send)


def _too_large(max_bytes: int) -> Response:
    return problem(
        413,
        "payload_too_large",
        "Request body too large",
        f"Bodies are limited to {max_bytes} bytes.",
    )


async def _send(scope: Scope, receive: Receive, send: Send, response: Response) -> None:
    await response(scope, receive, send)


def _is_json(content_type: bytes) -> bool:
    return content_type == b"application/json" or content_type.endswith(b"+json")


def raw_body_route(scope: Scope) -> bool:
    # Signed webhooks are verified over their raw bytes, whatever type the sender declares.
    path: str = scope.get("path", "")
    return path.startswith("/api/webhooks/")
