"""Logs: one format for every line a process writes (API.md "Operations").

Project code logs through the standard library (`logging.getLogger("tenvoice.<area>")`), as
uvicorn, alembic and httpx do; one structlog `ProcessorFormatter` renders all of it, as JSON
(one object a line) or structlog's console renderer. A request's and a job's fields (request
id, tenant, job id, trace id) come from context variables read as a line is formatted, so no
call site passes them.

Only the commands set logging up (`setup`, and `log_config` for uvicorn's worker processes):
`create_app()` leaves the logging of whoever calls it (tests, an embedding program) alone.
"""

import logging
import logging.config
import re
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, Literal

import orjson
import structlog
from opentelemetry import trace
from structlog.typing import EventDict, Processor, WrappedLogger

from tenvoice.platform.tenancy import current_request_id

Format = Literal["json", "console"]

# Where a request keeps its fields, for the error handler that runs after it has unwound.
SCOPE_KEY = "tenvoice.log_context"

_context: ContextVar[dict[str, Any] | None] = ContextVar("tenvoice_log_context", default=None)

# Libraries whose lines at INFO are per request or per start, not news: httpx logs every
# request it sends (with its URL); alembic announces its plugins at import.
QUIET = {
    "httpx": "WARNING",
    "httpcore": "WARNING",
    "aiosqlite": "WARNING",
    "alembic.runtime.plugins": "WARNING",
}
# Lines dropped by their opening words: alembic's at every migration, uvicorn's at every
# start and stop. The lines that say something happened (each migration applied, startup
# complete, the address uvicorn listens on) stay.
_NOISE = {
    "alembic.runtime.migration": ["Context impl ", "Will assume "],
    "uvicorn.error": ["Waiting for application "],
}


# -- fields from the context ---------------------------------------------------------------


@contextmanager
def log_context(**fields: Any) -> Iterator[dict[str, Any]]:
    """Fields every line logged inside carries (a request's, a job's); `bind` adds more.

    The dict is shared, not copied, with what runs inside (tasks, threads, dependencies), so
    a field bound deep in a request, such as its tenant, still reaches its access line.
    """
    kept = {key: value for key, value in fields.items() if value is not None}
    token = _context.set(kept)
    try:
        yield kept
    finally:
        _context.reset(token)


def bind(**fields: Any) -> None:
    """Add fields to the current request's or job's lines; outside either, nothing."""
    context = _context.get()
    if context is not None:
        context.update(fields)


def _add_context(_logger: WrappedLogger, _method: str, event: EventDict) -> EventDict:
    request_id = current_request_id.get()
    if request_id is not None:
        event.setdefault("request_id", request_id)
    context = _context.get()
    if context:
        for key, value in context.items():
            event.setdefault(key, value)
    # Without an OpenTelemetry SDK this is the API's no-op span, whose context is invalid.
    span = trace.get_current_span().get_span_context()
    if span.is_valid:
        event.setdefault("trace_id", format(span.trace_id, "032x"))
        event.setdefault("span_id", format(span.span_id, "016x"))
    return event


def _drop_uvicorn_colors(_logger: WrappedLogger, _method: str, event: EventDict) -> EventDict:
    # uvicorn passes a copy of each message with terminal colour codes as an `extra`.
    event.pop("color_message", None)
    return event


# -- redaction -----------------------------------------------------------------------------

# A backstop, not the mechanism. Nothing logs a secret in the first place: call sites log
# ids and error types, the access line logs the route template, never the path, and the
# test suite fails when any secret it handled shows up in a line it logged (tests/logscan).
# This only limits the damage of a slip: a key, a signing secret, a bearer credential, a
# hosted link's token or a URL's password is cut down to its prefix. (The secrets key bears
# no mark to find it by; only the scan guards it.)
_SECRET = re.compile(
    r"(tv_sk_|tv_admin_)[A-Za-z0-9_-]+"
    r"|(whsec_)[A-Za-z0-9+/=_-]+"
    r"|(/hosted/invoices/)[A-Za-z0-9_-]+"
    r"|((?i:bearer)\s+)[^\s\"',;]+"
    r"|(://)[^/\s@\"']+@"
)


def _masked(match: re.Match[str]) -> str:
    kept = next(group for group in match.groups() if group is not None)
    return f"{kept}***@" if kept == "://" else f"{kept}***"


def redact(text: str) -> str:
    return _SECRET.sub(_masked, text)


# Fields whose values the service makes itself (ids, a route template, the time), which
# hold no secret by construction; skipping them halves the backstop's cost on an access line.
_MADE_HERE = frozenset(
    {"timestamp", "level", "logger", "route", "tenant_id", "job_id", "job_kind", "trace_id",
     "span_id"}
)  # fmt: skip


def _redact(_logger: WrappedLogger, _method: str, event: EventDict) -> EventDict:
    for key, value in event.items():
        if isinstance(value, str) and key not in _MADE_HERE:
            event[key] = redact(value)
    return event


# -- rendering -----------------------------------------------------------------------------

_LEADING = ("timestamp", "level", "event", "logger")


def _render_json(_logger: WrappedLogger, _method: str, event: EventDict) -> str:
    ordered = {key: event.pop(key) for key in _LEADING if key in event}
    ordered.update(event)
    return orjson.dumps(ordered, default=str, option=orjson.OPT_NON_STR_KEYS).decode()


def _common() -> list[Processor]:
    """What every line gets, from the standard library or from a structlog logger."""
    return [
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True, key="timestamp"),
        _add_context,
    ]


def formatter(fmt: Format = "json", *, redacted: bool = True) -> logging.Formatter:
    """The formatter of every handler; `redacted=False` only for the test suite's scan, which
    must see what the call sites wrote, before the backstop."""
    renderer: Processor = (
        _render_json if fmt == "json" else structlog.dev.ConsoleRenderer(colors=_colors())
    )
    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[
            *_common(),
            structlog.stdlib.ExtraAdder(),
            _drop_uvicorn_colors,
        ],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            # Tracebacks as text, so that the redaction sees them too.
            structlog.processors.format_exc_info,
            *([_redact] if redacted else []),
            renderer,
        ],
    )


def _colors() -> bool:
    return sys.stderr.isatty()


class Noise(logging.Filter):
    """Drops a logger's lines that open with any of `prefixes`."""

    def __init__(self, prefixes: Sequence[str]) -> None:
        super().__init__()
        self.prefixes = tuple(prefixes)

    def filter(self, record: logging.LogRecord) -> bool:
        return not (isinstance(record.msg, str) and record.msg.startswith(self.prefixes))


# -- set-up --------------------------------------------------------------------------------


def chosen_format(setting: Format | None) -> Format:
    """JSON unless a person is watching, judged by stdout as API.md has it (a service
    manager or a pipe takes stdout too): console when stdout is a terminal."""
    if setting is not None:
        return setting
    return "console" if sys.stdout.isatty() else "json"


def log_config(fmt: Format, level: str) -> dict[str, Any]:
    """The `logging.config.dictConfig` of a tenvoice process; uvicorn applies it again in
    each of its worker processes (`serve --workers N`)."""
    noise = {f"noise:{name}": {"()": Noise, "prefixes": words} for name, words in _NOISE.items()}
    loggers: dict[str, dict[str, Any]] = {name: {"level": lvl} for name, lvl in QUIET.items()}
    for name in _NOISE:
        loggers.setdefault(name, {})["filters"] = [f"noise:{name}"]
    # uvicorn's own access line is off (`serve` passes access_log=False): ours says more.
    loggers["uvicorn.access"] = {"handlers": [], "propagate": False}
    return {
        "version": 1,
        # The project's modules (and their loggers) are imported before this runs.
        "disable_existing_loggers": False,
        "formatters": {"tenvoice": {"()": formatter, "fmt": fmt}},
        "filters": noise,
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "stream": "ext://sys.stderr",
                "formatter": "tenvoice",
            }
        },
        "root": {"handlers": ["stderr"], "level": level.upper()},
        "loggers": loggers,
    }


def configure_structlog() -> None:
    """structlog's own loggers, should any code use one, end in the same handlers; and the
    standard library's records gather only what a line shows. Run in every process (each of
    uvicorn's workers too)."""
    # The calling source line, thread and process names are in no line: walking the stack
    # for the caller was most of an access line's cost.
    logging._srcfile = None
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *_common(),
            structlog.stdlib.PositionalArgumentsFormatter(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )


def setup(setting: Format | None, level: str) -> dict[str, Any]:
    """Set up this process's logging; the config, for uvicorn to apply in its workers."""
    config = log_config(chosen_format(setting), level)
    logging.config.dictConfig(config)
    logging.captureWarnings(True)
    configure_structlog()
    return config
