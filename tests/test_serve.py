"""`tenvoice serve` as a user runs it: its own process, worker processes, the embedded default."""

import asyncio
import json
import os
import signal
import sys
from pathlib import Path

import httpx

from tests import logscan
from tests.live import free_socket, until_ready


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
    assert "secrets_key" in json.loads((tmp_path / "tenvoice.db.secrets.json").read_text())
    log = tmp_path / "stderr"
    with log.open("wb") as stderr:
        server = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "tenvoice.cli", "serve", "--port", str(port), "--workers", "2",
            env=env, stdout=asyncio.subprocess.DEVNULL, stderr=stderr,
        )  # fmt: skip
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=5) as client:
            await until_ready(client)
            admin = {"Authorization": "Bearer serve-test-admin"}
            created = await client.post("/api/tenants", json={"name": "Served"}, headers=admin)
            assert created.status_code == 201, created.text
            # Each request may land on either worker: both see the same database.
            for _ in range(10):
                listed = await client.get("/api/tenants", headers=admin)
                assert [t["name"] for t in listed.json()["data"]] == ["Served"]
            # ...and derive the same public links, from the key kept beside the database.
            url = await _finalized_invoice_link(client, admin, created.json()["id"])
            for _ in range(6):
                assert (await client.get(url)).status_code == 200
    finally:
        server.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(server.wait(), 20) == 0
    # Both worker processes log in the one format, and only what is worth a line.
    logged = log.read_text()
    logscan.SCAN.note_output(logged)
    lines = [json.loads(line) for line in logged.splitlines()]
    assert [line["event"] for line in lines].count("Application startup complete.") == 2
    assert len([line for line in lines if line["logger"] == "tenvoice.access"]) >= 18
    assert not any("plugin" in line["event"] for line in lines)


async def _finalized_invoice_link(
    client: httpx.AsyncClient, admin: dict[str, str], tenant_id: str
) -> str:
    created = await client.post(
        f"/api/tenants/{tenant_id}/api-keys", json={"name": "k"}, headers=admin
    )
    tenant = {"Authorization": f"Bearer {created.json()['key']}"}
    ada = {"name": "Ada", "email": "ada@example.com"}
    customer = (await client.post("/api/customers", json=ada, headers=tenant)).json()
    body: dict[str, object] = {
        "customerId": customer["id"],
        "items": [{"description": "Work", "quantity": 1, "unitPrice": "10"}],
        "finalize": True,
    }
    invoice = (await client.post("/api/invoices", json=body, headers=tenant)).json()
    url: str = invoice["hostedUrl"]
    return url


async def test_serve_on_postgresql_without_a_secrets_key_refuses_in_one_sentence(
    postgres: tuple[str, str],
) -> None:
    with free_socket() as sock:
        port = sock.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if k != "TENVOICE_SECRETS_KEY"}
    # A reachable, migrated database: the key is all that is missing.
    env["TENVOICE_DATABASE_URL"] = postgres[1]
    server = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tenvoice.cli", "serve", "--port", str(port),
        env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        out, err = await asyncio.wait_for(server.communicate(), 30)
    finally:
        if server.returncode is None:  # it started after all: stop it
            server.kill()
            await server.wait()

    assert server.returncode == 1
    assert out == b""
    lines = err.decode().strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("tenvoice serve: TENVOICE_SECRETS_KEY is not set")
    assert "secrets.token_urlsafe(32)" in lines[0]
