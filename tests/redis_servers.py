"""Redis for the rate-limit tests: the shared one (never stopped: CI and other runs use it),
or a private `redis-server` a test starts, stops and starts again on a port of its own."""

import contextlib
import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator

import pytest
import redis

from tests.live import free_socket

SHARED_URL = os.environ.get("TENVOICE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
REQUIRE_REDIS = os.environ.get("TENVOICE_TEST_REQUIRE_REDIS", "") not in ("", "0")


def unavailable(reason: str) -> None:
    """Fail where Redis is required (CI), skip elsewhere."""
    if REQUIRE_REDIS:
        pytest.fail(f"Redis is required here: {reason}")
    pytest.skip(reason)


def answers(url: str) -> bool:
    client = redis.Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5)
    try:
        return bool(client.ping())
    except (redis.RedisError, OSError):
        return False
    finally:
        client.close()


def shared_redis() -> str:
    if not answers(SHARED_URL):
        unavailable(f"no Redis answers at {SHARED_URL}")
    return SHARED_URL


def unique_prefix() -> str:
    """Keys of their own for each test: runs in parallel and the shared Redis never mix."""
    return f"tenvoice-test-{uuid.uuid4().hex}"


class PrivateRedis:
    """A throwaway `redis-server` (no persistence) that a test may kill and restart."""

    def __init__(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            unavailable("redis-server is not installed")
        self._binary = str(binary)
        with free_socket() as sock:
            self.port = sock.getsockname()[1]
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self._process = subprocess.Popen(  # noqa: S603 (a fixed binary and arguments)
            [self._binary, "--port", str(self.port), "--bind", "127.0.0.1",
             "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 10
        while not answers(self.url):
            if time.monotonic() > deadline or self._process.poll() is not None:
                self.stop()
                pytest.fail(f"redis-server did not start on port {self.port}")
            time.sleep(0.05)

    def stop(self) -> None:
        if self._process is not None:
            self._process.kill()
            self._process.wait(10)
            self._process = None


@contextlib.contextmanager
def private_redis() -> Iterator[PrivateRedis]:
    server = PrivateRedis()
    server.start()
    try:
        yield server
    finally:
        server.stop()
