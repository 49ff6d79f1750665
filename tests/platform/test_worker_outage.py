"""`tenvoice worker` while its database goes away and comes back: it waits longer each time
instead of retrying (and logging) every poll, and says once that the database is gone and
once that it is back."""

import asyncio
import contextlib
import signal
import time

from sqlalchemy.engine import make_url

from tenvoice.platform.outage import MAX_WAIT_SECONDS
from tests.cli import COMMAND, environment, with_port
from tests.conftest import SECRETS_KEY
from tests.live import eventually
from tests.tcpproxy import TcpProxy


async def test_the_worker_backs_off_and_logs_an_outage_once(postgres: tuple[str, str]) -> None:
    _, app_url = postgres
    server = make_url(app_url)
    proxy = TcpProxy(server.host or "127.0.0.1", server.port or 5432)
    await proxy.on()
    lines: list[tuple[float, str]] = []
    worker = await asyncio.create_subprocess_exec(
        *COMMAND, "worker",
        env=environment(
            database_url=with_port(app_url, proxy.port),
            worker_poll_seconds="0.05",
            secrets_key=SECRETS_KEY,
        ),
        stderr=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    assert worker.stderr is not None
    stream = worker.stderr

    async def read() -> None:
        while line := await stream.readline():
            lines.append((time.monotonic(), line.decode().rstrip()))

    reading = asyncio.create_task(read())

    def logged(words: str) -> list[str]:
        return [line for _, line in lines if words in line]

    try:

        async def started() -> list[str]:
            return logged("outbox worker started")

        await eventually(started, timeout=30)
        await asyncio.sleep(0.5)  # a few polls through the proxy
        await proxy.off()
        down_at = time.monotonic()
        await asyncio.sleep(5)
        during = [line for at, line in lines if at >= down_at]
        # Polling every 0.05 s, a worker that retried at that pace would log 100 lines here.
        assert len(during) <= 3, during
        [unavailable] = logged("the database is unavailable")
        assert "the outbox worker is paused" in unavailable
        assert f"at most every {MAX_WAIT_SECONDS:g} s" in unavailable

        await proxy.on()

        async def back() -> list[str]:
            return logged("the database is available again")

        # The waits double from half a second: the next try is at most 8 s away.
        assert len(await eventually(back, timeout=15)) == 1
        assert len(logged("the database is unavailable")) == 1
    finally:
        worker.send_signal(signal.SIGTERM)
        with contextlib.suppress(ProcessLookupError):
            assert await asyncio.wait_for(worker.wait(), 20) == 0
        await reading
        with contextlib.suppress(AssertionError):
            await proxy.off()
