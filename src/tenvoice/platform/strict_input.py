"""What every route may assume of its input: strict JSON, and no U+0000 in any string.

PostgreSQL cannot store U+0000 in text (SQLite can), so a NUL anywhere is refused here,
before any route runs, and both databases answer the same 422. JSON is held to RFC 8259:
NaN, Infinity and numbers beyond a double are not JSON, whatever Python's parser allows.
"""

from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qsl

import orjson
from fastapi.routing import iter_route_contexts
from starlette.routing import compile_path
from starlette.types import ASGIApp, Receive, Scope, Send

from tenvoice.platform.asgi import read_body, replay_body
from tenvoice.platform.errors import AppError, FieldError, MalformedJson, ValidationFailed
from tenvoice.platform.http import field_path, problem, raw_body_route

NUL = "\x00"
NUL_MESSAGE = "must not contain U+0000"
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


def decode_json(body: bytes) -> Any:
    """The document a JSON body holds; MalformedJson or ValidationFailed otherwise."""
    try:
        document = orjson.loads(body)  # strict: no NaN or Infinity, no overflow to inf
    except orjson.JSONDecodeError:
        raise MalformedJson("The request body is not valid JSON.") from None
    # A NUL reaches a JSON string only as the escape \u0000; most bodies have none.
    if b"\\u0000" in body:
        fields = [FieldError(path, NUL_MESSAGE) for path in _nul_paths(document, ())]
        if fields:
            raise ValidationFailed(fields[0].field, NUL_MESSAGE, *fields[1:])
    return document


def _nul_paths(value: Any, at: tuple[int | str, ...]) -> Iterator[str]:
    if isinstance(value, str):
        if NUL in value:
            yield field_path(at)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _nul_paths(item, (*at, index))
    elif isinstance(value, dict):
        for key, item in value.items():
            if NUL in key:
                yield field_path(at)  # the key itself cannot be named as a path
            else:
                yield from _nul_paths(item, (*at, key))


def _printable(name: str) -> str:
    return name.replace(NUL, "\\u0000")


def parameter_errors(scope: Scope) -> list[FieldError]:
    """Query and path parameters that hold a NUL, named as the route names them."""
    errors: list[FieldError] = []
    query: bytes = scope.get("query_string", b"")
    if b"%00" in query or b"\x00" in query:
        for name, value in parse_qsl(query.decode("latin-1"), keep_blank_values=True):
            if NUL in name or NUL in value:
                errors.append(FieldError(_printable(name), NUL_MESSAGE))
    path: str = scope.get("path", "")
    if NUL in path:
        for route in iter_route_contexts(scope["app"].routes):
            matched = route.path is not None and compile_path(route.path)[0].match(path)
            if matched:
                names = [name for name, value in matched.groupdict().items() if NUL in value]
                errors += [FieldError(name, NUL_MESSAGE) for name in names]
                break
    return errors


class StrictInputMiddleware:
    """Refuse a NUL in the path or query (422), and a JSON body that is not strict JSON (400)
    or holds a NUL (422), before anything reads them.

    The body is read whole (the body guard outside has capped its size) and handed on as
    one message. Signed webhooks are left to their route, which checks the signature over
    the raw bytes first and then decodes with `decode_json`.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        errors = parameter_errors(scope)
        if errors:
            refusal = ValidationFailed(errors[0].field, NUL_MESSAGE, *errors[1:])
            await _refuse(refusal, scope, receive, send)
            return
        if scope["method"] not in _BODY_METHODS or raw_body_route(scope):
            await self.app(scope, receive, send)
            return
        body = await read_body(receive)
        if body is None:
            return  # the client left, or the body guard cut an oversized body short
        if body and _declares_json(scope):
            try:
                decode_json(body)
            except AppError as exc:
                await _refuse(exc, scope, receive, send)
                return
        await self.app(scope, replay_body(body, receive), send)


def _declares_json(scope: Scope) -> bool:
    # The body guard has refused every other declared type by now.
    headers: list[tuple[bytes, bytes]] = scope["headers"]
    for name, value in headers:
        if name == b"content-type":
            return value.split(b";")[0].strip().lower().endswith(b"json")
    return False


async def _refuse(exc: AppError, scope: Scope, receive: Receive, send: Send) -> None:
    response = problem(exc.status, exc.code, exc.title, exc.detail, exc.errors)
    await response(scope, receive, send)
