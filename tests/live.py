"""The service on a real socket, as deployed: uvicorn, the lifespan, the in-process worker.

The simulated gateway posts its webhooks over real HTTP to this server's own
`/api/webhooks/payments`, so a payment travels the whole way a production one does.
"""

import asyncio
import contextlib
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx
import uvicorn

from tenvoice.config import Settings
from tenvoice.main import create_app
from tenvoice.platform.db import Database
from tenvoice.platform.messages import EventHandlers

T = TypeVar("T")


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        # The test runner owns the process's signals, not this server.
        yield


@dataclass(frozen=True)
class LiveServer:
    url: str
    client: httpx.AsyncClient
    settings: Settings


def free_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


@contextlib.asynccontextmanager
async def live_server(
    settings: Settings,
    db: Database,
    event_handlers: EventHandlers,
    *,
    sock: socket.socket | None = None,
    **overrides: Any,
) -> AsyncIterator[LiveServer]:
    """Serve the app on 127.0.0.1 until the block ends; `overrides` change its settings.

    By default the gateway answers at once and calls back this very server.
    """
    sock = sock or free_socket()
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    settings = settings.model_copy(
        update={
            "worker": True,
            "worker_poll_seconds": 0.02,
            "gateway_latency_ms": 0,
            "gateway_callback_url": f"{url}/api/webhooks/payments",
            **overrides,
        }
    )
    app = create_app(settings, db=db, event_handlers=event_handlers)
    server = _Server(uvicorn.Config(app, lifespan="on", log_level="warning"))
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:
            if serving.done():
                serving.result()  # raises what stopped it
            await asyncio.sleep(0.01)
        async with httpx.AsyncClient(base_url=url, timeout=30) as client:
            yield LiveServer(url, client, settings)
    finally:
        server.should_exit = True
        await serving
        sock.close()


async def eventually(
    check: Callable[[], Awaitable[T]],
    *,
    timeout: float = 20.0,  # noqa: ASYNC109 (a deadline between polls, not a cancellation)
    interval: float = 0.05,
) -> T:
    """Poll `check` until it returns a truthy value (returned) or the time runs out."""
    deadline = time.monotonic() + timeout
    while True:
        value = await check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"still {value!r} after {timeout} s")
        await asyncio.sleep(interval)


async def until_ready(client: httpx.AsyncClient) -> None:
    """Wait for a served process (a subprocess, say) to answer /readyz with 200."""

    async def ready() -> bool:
        try:
            return (await client.get("/readyz")).status_code == 200
        except httpx.TransportError:
            return False

    await eventually(ready, timeout=30)
