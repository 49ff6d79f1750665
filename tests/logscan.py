"""A pytest plugin (registered by tests/conftest.py): no secret the suite handles may appear
in a line the service logs (API.md "Operations").

Every record logged during the session is rendered by the service's own formatter, without
its redaction backstop (which must not be what keeps a secret out), and indexed by the
tokens it holds. Every secret the suite handles is collected: the test settings' own, every
API key, signing secret and hosted link token a test client received, every bearer
credential a test client sent, and those a `tenvoice` subprocess printed at start. The
subprocesses' log output is fed in by the tests that run them. When the session ends, a
secret found among the logged tokens fails it.
"""

import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from tenvoice.platform import logs

# Shorter strings (a test's "nope" credential, a key's displayed prefix) are not secrets,
# and would be found everywhere by chance.
MIN_SECRET_LENGTH = 16
PREFIXES = ("tv_sk_", "tv_admin_", "whsec_")
_HANDED_OUT = re.compile(
    r"(tv_sk_[A-Za-z0-9_-]{16,}|tv_admin_[A-Za-z0-9_-]{16,}|whsec_[A-Za-z0-9+/=]{16,})"
    r"|/hosted/invoices/([A-Za-z0-9_-]{16,})"
)
# Signing secrets are standard base64; everything else the service mints is URL-safe.
_TOKEN = re.compile(r"whsec_[A-Za-z0-9+/=]+|[A-Za-z0-9_-]{16,}")


@dataclass
class LogScan:
    secrets: set[str] = field(default_factory=set)
    # Each token of at least MIN_SECRET_LENGTH logged, and the first line that held it.
    logged: dict[str, str] = field(default_factory=dict)
    lines: int = 0

    def note_secret(self, *secrets: str | None) -> None:
        self.secrets.update(s for s in secrets if s and len(s) >= MIN_SECRET_LENGTH)

    def note_secrets_in(self, text: str) -> None:
        """Every key, signing secret and hosted link token written in `text`."""
        for match in _HANDED_OUT.finditer(text):
            self.note_secret(match.group(1) or match.group(2))

    def note_line(self, line: str) -> None:
        self.lines += 1
        for token in _tokens(line):
            self.logged.setdefault(token, line)

    def note_output(self, text: str) -> None:
        """A subprocess's log output (its stderr), line by line."""
        for line in text.splitlines():
            self.note_line(line)

    def leaks(self) -> list[tuple[str, str]]:
        """Each secret that was logged, with the first line that held it."""
        return sorted((s, self.logged[s]) for s in self.secrets if s in self.logged)

    def handler(self) -> logging.Handler:
        return _Capture(self)


def _tokens(line: str) -> Iterable[str]:
    for match in _TOKEN.finditer(line):
        token = match.group()
        yield token
        # A key glued to what precedes it ("key=tv_sk_..." is split at "=", "xtv_sk_..." not).
        for prefix in PREFIXES:
            at = token.find(prefix, 1)
            if at > 0:
                yield token[at:]


class _Capture(logging.Handler):
    def __init__(self, scan: LogScan) -> None:
        super().__init__(logging.NOTSET)
        self.scan = scan
        self.setFormatter(logs.formatter("json", redacted=False))

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record)
        except Exception:
            self.handleError(record)
            return
        self.scan.note_line(line)


SCAN = LogScan()


def report(leaks: list[tuple[str, str]]) -> list[str]:
    lines = [f"{len(leaks)} secret(s) handled by the tests appeared in what the service logged:"]
    for secret, line in leaks:
        shown = f"{secret[:10]}..."
        lines.append(f"  {shown} in: {line.replace(secret, '<SECRET ' + shown + '>')[:400]}")
    return lines


# -- collecting what the test clients see --------------------------------------------------

_async_send = httpx.AsyncClient.send
_sync_send = httpx.Client.send


def _note_exchange(request: httpx.Request, response: httpx.Response, streamed: bool) -> None:
    scheme, _, credential = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer":
        SCAN.note_secret(credential.strip())
    if not streamed:
        SCAN.note_secrets_in(response.content.decode("utf-8", errors="replace"))


async def _noting_async_send(
    self: httpx.AsyncClient, request: httpx.Request, **kwargs: Any
) -> httpx.Response:
    response = await _async_send(self, request, **kwargs)
    _note_exchange(request, response, bool(kwargs.get("stream")))
    return response


def _noting_sync_send(self: httpx.Client, request: httpx.Request, **kwargs: Any) -> httpx.Response:
    response = _sync_send(self, request, **kwargs)
    _note_exchange(request, response, bool(kwargs.get("stream")))
    return response


# -- the hooks -----------------------------------------------------------------------------


def pytest_configure(config: pytest.Config) -> None:
    root = logging.getLogger()
    root.addHandler(SCAN.handler())
    # What the service logs at its default level, and no more: the libraries it quiets stay
    # quiet (httpx would log every URL a test client asks for, the test's own doing).
    if root.getEffectiveLevel() > logging.INFO:
        root.setLevel(logging.INFO)
    for name, level in logs.QUIET.items():
        logging.getLogger(name).setLevel(level)
    httpx.AsyncClient.send = _noting_async_send  # type: ignore[method-assign]
    httpx.Client.send = _noting_sync_send  # type: ignore[method-assign]


def pytest_unconfigure(config: pytest.Config) -> None:
    httpx.AsyncClient.send = _async_send  # type: ignore[method-assign]
    httpx.Client.send = _sync_send  # type: ignore[method-assign]


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if SCAN.leaks():
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    leaks = SCAN.leaks()
    if leaks:
        terminalreporter.section("secrets in logs", red=True)
        for line in report(leaks):
            terminalreporter.write_line(line)
    else:
        terminalreporter.write_line(
            f"log scan: none of {len(SCAN.secrets)} secrets in {SCAN.lines} log lines"
        )
