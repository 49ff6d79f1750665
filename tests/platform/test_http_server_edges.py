"""What the HTTP server itself answers, over raw sockets to a real `tenvoice serve`.

Requests the app never sees (unparseable, oversized heads, never finished) still get
problem+json (API.md: every answer, even to a malformed HTTP request), and a request that
stalls is answered 408 and closed after TENVOICE_REQUEST_TIMEOUT_SECONDS (1 s here).
"""

import asyncio
import contextlib
import os
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.live import free_socket

TIMEOUT = 1.0
# Generous for a loaded CI machine, and still far below "held open forever".
SLACK = 4.0
HEALTHZ = b"GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"


@dataclass(frozen=True)
class RawAnswer:
    status: int
    headers: dict[str, str]
    body: bytes
    closed: bool

    def problem(self, status: int, code: str) -> dict[str, Any]:
        assert self.status == status, (self.status, self.headers, self.body)
        assert self.headers["content-type"] == "application/problem+json"
        document: dict[str, Any] = orjson.loads(self.body)
        assert document["status"] == status
        assert document["code"] == code
        assert document["title"]
        assert document["detail"]
        assert document["requestId"] == self.headers["x-request-id"]
        assert self.closed, "the connection should be closed after this answer"
        return document


@pytest.fixture(scope="module")
async def port(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[int]:
    directory = tmp_path_factory.mktemp("serve")
    with free_socket() as sock:
        number = sock.getsockname()[1]
    env = {
        **os.environ,
        "TENVOICE_DATABASE_URL": f"sqlite:///{Path(directory) / 'tenvoice.db'}",
        "TENVOICE_WORKER": "off",
        "TENVOICE_REQUEST_TIMEOUT_SECONDS": str(TIMEOUT),
    }
    migrate = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tenvoice.cli", "migrate", env=env,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    assert await migrate.wait() == 0
    server = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tenvoice.cli", "serve", "--port", str(number),
        env=env, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                answer = await exchange(number, HEALTHZ)
                if answer.status == 200:
                    break
            except OSError:
                pass
            assert server.returncode is None, "tenvoice serve exited"
            assert time.monotonic() < deadline, "tenvoice serve did not start"
            await asyncio.sleep(0.1)
        yield number
    finally:
        server.terminate()
        await asyncio.wait_for(server.wait(), 20)


async def exchange(
    port: int, *parts: bytes, pause: float = 0, wait: float = TIMEOUT + SLACK
) -> RawAnswer:
    """Send `parts` (pausing between them), then read one answer and whether the server
    closed the connection after it."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)

    async def send() -> None:
        with contextlib.suppress(ConnectionError):
            for part in parts:
                writer.write(part)
                await writer.drain()
                await asyncio.sleep(pause)

    sending = asyncio.create_task(send())
    try:
        async with asyncio.timeout(wait):
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            headers = {}
            for line in lines[1:]:
                if line:
                    name, _, value = line.partition(":")
                    headers[name.strip().lower()] = value.strip()
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            closed = await reader.read(1) == b""
        return RawAnswer(int(lines[0].split()[1]), headers, body, closed)
    finally:
        sending.cancel()
        writer.close()


async def test_a_malformed_request_line_is_400_problem(port: int) -> None:
    answer = await exchange(port, b"GARBAGE\r\n\r\n")
    answer.problem(400, "bad_request")


async def test_a_bad_content_length_is_400_problem(port: int) -> None:
    for length in (b"abc", b"-1", b"1, 2"):
        answer = await exchange(
            port,
            b"POST /api/tenants HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
            b"Content-Length: " + length + b"\r\n\r\n{}",
        )
        answer.problem(400, "bad_request")


async def test_an_oversized_head_is_431_problem(port: int) -> None:
    query = b"GET /api/customers?search=" + b"a" * 100_000 + b" HTTP/1.1\r\nHost: t\r\n\r\n"
    answer = await exchange(port, query)
    answer.problem(431, "headers_too_large")
    header = b"GET /healthz HTTP/1.1\r\nHost: t\r\nX-Padding: " + b"a" * 100_000 + b"\r\n\r\n"
    answer = await exchange(port, header)
    answer.problem(431, "headers_too_large")
    # A head of ordinary size is still served.
    normal = HEALTHZ.replace(b"\r\n\r\n", b"\r\nX-Padding: " + b"a" * 8_000 + b"\r\n\r\n")
    assert (await exchange(port, normal)).status == 200


async def test_headers_that_never_end_get_408_within_the_timeout(port: int) -> None:
    started = time.monotonic()
    answer = await exchange(port, b"GET /healthz HTTP/1.1\r\nHost: t\r\nX-Slow: 1\r\n")
    problem = answer.problem(408, "request_timeout")
    assert TIMEOUT <= time.monotonic() - started < TIMEOUT + SLACK
    assert "1 seconds" in problem["detail"]


async def test_a_trickled_head_cannot_outlast_the_timeout(port: int) -> None:
    # A byte every 0.3 s: each alone is prompt, the request as a whole is not.
    started = time.monotonic()
    trickle = [b"GET /healthz HTTP/1.1\r\n"] + [b"X" for _ in range(20)]
    answer = await exchange(port, *trickle, pause=0.3, wait=SLACK)
    answer.problem(408, "request_timeout")
    assert time.monotonic() - started < TIMEOUT + SLACK


async def test_a_body_that_stops_halfway_gets_408_within_the_timeout(port: int) -> None:
    started = time.monotonic()
    answer = await exchange(
        port,
        b"POST /api/tenants HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
        b'Content-Length: 100\r\nAuthorization: Bearer x\r\n\r\n{"name": "Half',
    )
    answer.problem(408, "request_timeout")
    assert TIMEOUT <= time.monotonic() - started < TIMEOUT + SLACK


async def test_a_silent_connection_is_closed_within_the_timeout(port: int) -> None:
    started = time.monotonic()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        async with asyncio.timeout(TIMEOUT + SLACK):
            assert await reader.read(1) == b""  # closed, with nothing to answer
    finally:
        writer.close()
    assert time.monotonic() - started >= TIMEOUT
