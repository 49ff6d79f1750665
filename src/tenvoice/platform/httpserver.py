"""The HTTP server's own answers, before any request reaches the app: problem+json too.

uvicorn answers a request it cannot parse (a bad request line, a bad Content-Length) with
plain text, sets no limit on the size of a request's head, and waits forever for a request
that never finishes arriving. This protocol, uvicorn's httptools one with those three
changed, is what `tenvoice serve` runs (`http=` in cli.py).
"""

import asyncio
import uuid
from typing import Any

import orjson
from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from tenvoice.config import get_settings
from tenvoice.platform.http import PROBLEM_JSON, problem_body

# The request line and headers together; a longer head is refused with 431.
MAX_HEAD_BYTES = 32 * 1024
# How long a refused connection is kept open to discard what its client still sends.
LINGER_SECONDS = 2.0
_REASONS = {400: b"Bad Request", 408: b"Request Timeout", 431: b"Request Header Fields Too Large"}


class _HeadTooLarge(Exception):
    pass


class ProblemHttpProtocol(HttpToolsProtocol):
    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.request_timeout = get_settings().request_timeout_seconds
        self._deadline: asyncio.TimerHandle | None = None
        self._receiving = False  # a request has begun and not yet fully arrived
        self._head_complete = False
        self._head_bytes = 0
        self._head_too_large = False
        self._lingering = False  # answered and refused: input is discarded until close

    # A connection, and each request on it, has `request_timeout` seconds to arrive whole,
    # however slowly its bytes trickle in; the app's own time is not counted.
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if not self._lingering:
            super().data_received(data)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._receiving, self._head_complete, self._head_bytes = True, False, 0
        self._arm()

    def on_url(self, url: bytes) -> None:
        self._count_head(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count_head(len(name) + len(value) + 4)
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._head_complete = True
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._receiving = False
        self._disarm()

    def send_400_response(self, msg: str) -> None:
        # Every parse failure lands here, an oversized head included (raised from a parser
        # callback, which the parser reports as an error of its own).
        if self._head_too_large:
            self._answer(
                431, "headers_too_large", f"The request's head exceeds {MAX_HEAD_BYTES} bytes."
            )
        else:
            self._answer(400, "bad_request", "The request is not valid HTTP/1.1.")

    def _count_head(self, size: int) -> None:
        self._head_bytes += size
        if self._head_bytes > MAX_HEAD_BYTES:
            self._head_too_large = True
            raise _HeadTooLarge  # stops the parser; reported through send_400_response

    def _arm(self) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(self.request_timeout, self._timed_out)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _timed_out(self) -> None:
        self._deadline = None
        if self.transport.is_closing():
            return
        cycle = self.cycle if self._head_complete else None
        if not self._receiving or (cycle is not None and cycle.response_started):
            # Nothing asked yet, or the app already answering: there is no one to tell.
            self.transport.close()
            return
        if cycle is not None:
            # The app is waiting for the rest of the body: it will hear of a disconnect.
            cycle.disconnected = True
            cycle.message_event.set()
        detail = f"The request did not arrive whole within {self.request_timeout:g} seconds."
        self._answer(408, "request_timeout", detail)

    def _answer(self, status: int, code: str, detail: str) -> None:
        request_id = uuid.uuid4().hex
        body = problem_body(status, code, _REASONS[status].decode(), detail)
        body["requestId"] = request_id
        content = orjson.dumps(body)
        head = [b"HTTP/1.1 %d %s\r\n" % (status, _REASONS[status])]
        head += [
            name + b": " + value + b"\r\n" for name, value in self.server_state.default_headers
        ]
        head += [
            b"content-type: " + PROBLEM_JSON.encode() + b"\r\n",
            b"content-length: %d\r\n" % len(content),
            b"x-request-id: " + request_id.encode() + b"\r\n",
            b"connection: close\r\n\r\n",
        ]
        self.transport.write(b"".join(head) + content)
        # Closing a socket with unread input makes the kernel reset the connection, which
        # can discard the answer before the client reads it (a client still sending a
        # 100 kB head, say). So: shut our side, drop what still arrives, close soon after.
        self._disarm()
        self._lingering = True
        if self.transport.can_write_eof():
            self.transport.write_eof()
        self.loop.call_later(LINGER_SECONDS, self.transport.close)
