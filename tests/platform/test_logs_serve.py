"""What `tenvoice migrate` and `tenvoice serve` write, run as an operator runs them: JSON
lines on stderr when not at a terminal, readable ones at a terminal, none of alembic's or
uvicorn's noise, one access line per request, and no secret."""

import asyncio
import json
import os
import pty
import re
import select
import signal
import subprocess
from pathlib import Path
from typing import Any

import httpx

from tests import logscan
from tests.cli import COMMAND, environment, run
from tests.live import free_socket, until_ready

NOISE = ("Context impl", "Will assume", "setup plugin", "Waiting for application", "HTTP Request")
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def json_lines(text: str) -> list[dict[str, Any]]:
    """Every line of `text` as a JSON object (a line that is not one fails the test)."""
    parsed = []
    for line in text.splitlines():
        try:
            parsed.append(json.loads(line))
        except ValueError:
            raise AssertionError(f"not a JSON line: {line!r}") from None
    return parsed


def test_migrate_logs_each_migration_as_json_and_nothing_else(tmp_path: Path) -> None:
    migrated = run("migrate", cwd=tmp_path)
    assert migrated.code == 0, migrated.stderr
    assert migrated.stdout == "migrations applied\n"
    lines = json_lines(migrated.stderr)
    assert lines
    assert all(line["event"].startswith("Running upgrade") for line in lines), lines
    assert {line["logger"] for line in lines} == {"alembic.runtime.migration"}
    assert {line["level"] for line in lines} == {"info"}


def test_at_a_terminal_the_lines_are_readable_text(tmp_path: Path) -> None:
    output = _in_a_terminal([*COMMAND, "migrate"], tmp_path)
    text = _ANSI.sub("", output)
    assert "migrations applied" in text
    upgrades = [line for line in text.splitlines() if "Running upgrade" in line]
    assert upgrades
    for line in upgrades:
        assert not line.startswith("{"), line
        assert "[info" in line
    assert "alembic.runtime.migration" in upgrades[0]
    assert not any(noise in text for noise in NOISE)


def _in_a_terminal(command: list[str], cwd: Path) -> str:
    """What `command` writes to stdout and stderr when both are a terminal."""
    leader, follower = pty.openpty()
    process = subprocess.Popen(  # noqa: S603 (our own console script)
        command, cwd=cwd, env=environment(), stdout=follower, stderr=follower
    )
    os.close(follower)
    chunks: list[bytes] = []
    try:
        while True:
            ready, _, _ = select.select([leader], [], [], 30)
            assert ready, "no output within 30 s"
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            chunks.append(chunk)
        assert process.wait(30) == 0
    finally:
        os.close(leader)
        if process.poll() is None:
            process.kill()
    return b"".join(chunks).decode(errors="replace")


async def test_serve_writes_json_lines_without_noise_or_secrets(tmp_path: Path) -> None:
    assert run("migrate", cwd=tmp_path).code == 0
    with free_socket() as sock:
        port = sock.getsockname()[1]
    out, err = tmp_path / "stdout", tmp_path / "stderr"
    with out.open("wb") as stdout, err.open("wb") as stderr:
        server = await asyncio.create_subprocess_exec(
            *COMMAND, "serve", "--port", str(port),
            cwd=tmp_path, env=environment(), stdout=stdout, stderr=stderr,
        )  # fmt: skip
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=5) as client:
            await until_ready(client)
            admin_key = re.findall(r"^admin key: (\S+)$", out.read_text(), re.MULTILINE)[0]
            secrets = await _use(client, admin_key)
    finally:
        server.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(server.wait(), 20) in (0, -signal.SIGTERM)

    printed, logged = out.read_text(), err.read_text()
    logscan.SCAN.note_secrets_in(printed)
    logscan.SCAN.note_output(logged)
    # stdout: the lines automation reads (API.md "Running"); stderr: the log.
    assert "tenvoice listening on" in printed
    assert f"admin key: {admin_key}" in printed
    lines = json_lines(logged)
    assert not any(noise in line["event"] for line in lines for noise in NOISE), logged
    events = [line["event"] for line in lines]
    assert "Application startup complete." in events
    assert "outbox worker started (concurrency 16)" in events
    access = [line for line in lines if line["logger"] == "tenvoice.access"]
    routes = {(line["method"], line["route"], line["status"]) for line in access}
    assert {
        ("POST", "/api/tenants/{tenant_id}/api-keys", 201),
        ("POST", "/api/invoices", 201),
        ("GET", "/hosted/invoices/{token}", 200),
    } <= routes
    assert all(line["client"] == "127.0.0.1" for line in access)
    for secret in (admin_key, *secrets):
        assert secret not in logged


async def _use(client: httpx.AsyncClient, admin_key: str) -> list[str]:
    """A tenant, its key, an invoice and its public page; the secrets handed out."""
    admin = {"Authorization": f"Bearer {admin_key}"}
    tenant = (await client.post("/api/tenants", json={"name": "Logged"}, headers=admin)).json()
    created = await client.post(
        f"/api/tenants/{tenant['id']}/api-keys", json={"name": "k"}, headers=admin
    )
    key = created.json()["key"]
    headers = {"Authorization": f"Bearer {key}"}
    ada = {"name": "Ada", "email": "ada@example.com"}
    customer = (await client.post("/api/customers", json=ada, headers=headers)).json()
    body = {
        "customerId": customer["id"],
        "items": [{"description": "Work", "quantity": 1, "unitPrice": "10"}],
        "finalize": True,
    }
    invoice = (await client.post("/api/invoices", json=body, headers=headers)).json()
    hosted = await client.get(invoice["hostedUrl"])
    assert hosted.status_code == 200
    return [key, invoice["hostedUrl"].rsplit("/", 1)[1]]
