"""Real webhook receivers for the tests: a small ASGI app under uvicorn on 127.0.0.1.

Each receiver records what reached it (headers, raw body, when) and answers as the test
programs it: a status, headers, a body (sent in chunks, so a large one streams) and a delay.
"""

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from standardwebhooks.webhooks import Webhook
from starlette.types import Receive, Scope, Send

from tests.live import free_socket

_CHUNK = 64 * 1024


@dataclass(frozen=True)
class Received:
    path: str
    query: str
    headers: dict[str, str]
    body: bytes
    at: float  # time.monotonic()
    client: tuple[str, int] | None = None  # the connection's far end

    @property
    def webhook_id(self) -> str:
        return self.headers["webhook-id"]


@dataclass(frozen=True)
class Reply:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    delay: float = 0.0


Answer = Callable[[Received], Reply]


def ok(_: Received) -> Reply:
    return Reply(204)


class Receiver:
    def __init__(self, answer: Answer = ok) -> None:
        self.answer = answer
        self.received: list[Received] = []
        self.base_url = ""

    def url(self, path: str = "/hooks") -> str:
        return f"{self.base_url}{path}"

    def ids(self) -> list[str]:
        return [request.webhook_id for request in self.received]

    def first_seen(self) -> list[str]:
        """Webhook ids in the order each first arrived (a retry does not count again)."""
        return list(dict.fromkeys(self.ids()))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        assert scope["type"] == "http"
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body", False):
                break
        headers = {
            name.decode("latin-1"): value.decode("latin-1") for name, value in scope["headers"]
        }
        request = Received(
            scope["path"],
            scope["query_string"].decode(),
            headers,
            body,
            time.monotonic(),
            scope.get("client"),
        )
        self.received.append(request)
        reply = self.answer(request)
        if reply.delay:
            await asyncio.sleep(reply.delay)
        await send(
            {
                "type": "http.response.start",
                "status": reply.status,
                "headers": [(k.encode(), v.encode()) for k, v in reply.headers.items()],
            }
        )
        for start in range(0, max(len(reply.body), 1), _CHUNK):
            more = start + _CHUNK < len(reply.body)
            chunk = reply.body[start : start + _CHUNK]
            await send({"type": "http.response.body", "body": chunk, "more_body": more})


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        # The test runner owns the process's signals, not this server.
        yield


@contextlib.asynccontextmanager
async def serving(receiver: Receiver) -> AsyncIterator[Receiver]:
    """The receiver listening on a free loopback port until the block ends."""
    sock = free_socket()
    receiver.base_url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    server = _Server(uvicorn.Config(receiver, lifespan="off", log_level="warning"))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:
            if task.done():
                task.result()
            await asyncio.sleep(0.01)
        yield receiver
    finally:
        server.should_exit = True
        await task
        sock.close()


def verified(secret: str, request: Received) -> Any:
    """The payload, once `standardwebhooks` has checked it as a receiver would (raises if not)."""
    return Webhook(secret).verify(request.body, request.headers)
