"""Application errors: each class carries its HTTP status and stable machine code.

One handler (in `http.py`) renders them as RFC 9457 problem+json; nothing else in the code
decides how an error looks on the wire.
"""

from dataclasses import dataclass
from typing import ClassVar


@dataclass(frozen=True)
class FieldError:
    field: str
    message: str


class AppError(Exception):
    status: ClassVar[int] = 400
    code: ClassVar[str] = "bad_request"
    title: ClassVar[str] = "Bad request"

    def __init__(self, detail: str | None = None, *, errors: list[FieldError] | None = None):
        self.detail = detail or self.title
        self.errors = errors
        super().__init__(self.detail)


class BadRequest(AppError):
    pass


class Unauthorized(AppError):
    status = 401
    code = "unauthorized"
    title = "Missing or invalid credentials"


class Forbidden(AppError):
    status = 403
    code = "forbidden"
    title = "Not allowed"


class NotFound(AppError):
    status = 404
    code = "not_found"
    title = "Not found"


class Conflict(AppError):
    status = 409
    code = "conflict"
    title = "State conflict"


class ValidationFailed(AppError):
    status = 422
    code = "validation_failed"
    title = "Validation failed"

    def __init__(self, field: str, message: str, *more: FieldError):
        super().__init__(message, errors=[FieldError(field, message), *more])


class OffsetTooDeep(ValidationFailed):
    code = "offset_too_deep"
    title = "Offset page too deep"


class ServiceUnavailable(AppError):
    status = 503
    code = "service_unavailable"
    title = "A dependency is unavailable"


# /readyz names why it is not ready (API.md: "503 with the reason as code").
class DatabaseUnreachable(ServiceUnavailable):
    code = "database_unreachable"
    title = "The database is unreachable"


class DatabaseNotMigrated(ServiceUnavailable):
    code = "database_not_migrated"
    title = "The database is not migrated"


class MalformedJson(BadRequest):
    code = "malformed_json"
    title = "Malformed JSON"
