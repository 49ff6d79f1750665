"""`tenvoice serve` as a user runs it: its own process, worker processes, the embedded default."""

import asyncio
import os
import signal
import sys
from pathlib import Path

import httpx

from tests.live import eventually, free_socket


async def test_serve_with_two_workers_answers_and_stops_on_sigterm(tmp_path: Path) -> None:
    with free_socket() as sock:
        port = sock.getsockname()[1]
    env = {
        **os.environ,
        "TENVOICE_DATABASE_URL": f"sqlite:///{tmp_path / 'tenvoice.db'}",
        "TENVOICE_ADMIN_KEY": "serve-test-admin",
    }
    migrate = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tenvoice.cli", "migrate", env=env,
        stdout=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    assert await migrate.wait() == 0
    server = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tenvoice.cli", "serve", "--port", str(port), "--workers", "2",
        env=env, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=5) as client:

            async def ready() -> bool:
                try:
                    return (await client.get("/readyz")).status_code == 200
                except httpx.TransportError:
                    return False

            await eventually(ready)
            admin = {"Authorization": "Bearer serve-test-admin"}
            created = await client.post("/api/tenants", json={"name": "Served"}, headers=admin)
            assert created.status_code == 201, created.text
            # Each request may land on either worker: both see the same database.
            for _ in range(10):
                listed = await client.get("/api/tenants", headers=admin)
                assert [t["name"] for t in listed.json()["data"]] == ["Served"]
    finally:
        server.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(server.wait(), 20) == 0
