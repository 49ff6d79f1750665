"""Every command refuses to start, in one sentence naming the problem and its fix, when its
database URL, database or port is unusable: no traceback, no password, no server that can
only answer 503."""

import asyncio
import functools
import signal
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest
from sqlalchemy.engine import make_url

from tenvoice.platform.migrate import revisions, upgrade
from tests import databases
from tests.cli import COMMAND, environment, run
from tests.live import free_socket, until_ready

COMMANDS = ["migrate", "serve", "worker", "jobs"]
PASSWORD = "pa55-w0rd-never-shown"


def closed_port() -> int:
    with free_socket() as sock:
        port: int = sock.getsockname()[1]
    return port


def bootstrap(database: str, user: str = "postgres") -> str:
    """A URL on the test server, as `user` and for `database`, with a password in it."""
    url = make_url(databases.BOOTSTRAP_URL).set(username=user, password=PASSWORD, database=database)
    return url.render_as_string(hide_password=False)


def bad_urls(tmp_path: Path) -> dict[str, tuple[str, tuple[str, ...]]]:
    """Each bad set-up: its URL and what the one line must say."""
    refused = f"postgresql://tenvoice:{PASSWORD}@127.0.0.1:{closed_port()}/tenvoice"
    return {
        "unparseable": ("postgres ql:/nonsense", ("not a database URL", "TENVOICE_DATABASE_URL")),
        "unsupported": (
            f"mysql://root:{PASSWORD}@127.0.0.1/tenvoice",
            ("does not support (mysql://)", "postgresql://"),
        ),
        "nothing listening": (
            refused,
            ("unreachable (connection refused)", "start it or set TENVOICE_DATABASE_URL"),
        ),
        "no such host": (
            f"postgresql://tenvoice:{PASSWORD}@no-such-host.invalid/tenvoice",
            ("unreachable (no such host)", "set TENVOICE_DATABASE_URL"),
        ),
        "login refused": (
            bootstrap("postgres", user="tenvoice_no_such_role"),
            ("refused the login", "check the user and password in TENVOICE_DATABASE_URL"),
        ),
        "no such database": (
            bootstrap("tenvoice_no_such_database"),
            ("does not exist", "createdb tenvoice_no_such_database"),
        ),
        "sqlite directory missing": (
            f"sqlite:///{tmp_path / 'missing' / 'dir' / 'tenvoice.db'}",
            ("missing/dir", "does not exist", "create it or set TENVOICE_DATABASE_URL"),
        ),
    }


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize(
    "case",
    [
        "unparseable",
        "unsupported",
        "nothing listening",
        "no such host",
        "login refused",
        "no such database",
        "sqlite directory missing",
    ],
)
def test_a_bad_database_url_is_one_sentence_naming_the_fix(
    command: str, case: str, tmp_path: Path, postgres: tuple[str, str]
) -> None:
    url, expected = bad_urls(tmp_path)[case]
    args = [command, "--port", str(closed_port())] if command == "serve" else [command]
    result = run(*args, database_url=url)
    line = result.problem
    assert line.startswith(f"tenvoice {command}: "), line
    for words in expected:
        assert words in line, line
    assert PASSWORD not in result.stderr + result.stdout
    assert "listening" not in result.stdout
    # Not created on the way: an error, not a directory somewhere unexpected.
    assert not (tmp_path / "missing").exists()


@pytest.fixture
def empty_postgres(postgres: tuple[str, str]) -> Iterator[str]:
    """A database of its own on the test server, owned by the test owner and never migrated."""
    name = f"{databases.DATABASE}_unmigrated"

    async def admin(*statements: str) -> None:
        connection = await asyncpg.connect(databases.BOOTSTRAP_URL)
        try:
            for statement in statements:
                await connection.execute(statement)
        finally:
            await connection.close()

    drop = f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"
    databases.in_thread(lambda: admin(drop, f"CREATE DATABASE {name} OWNER {databases.OWNER}"))
    try:
        yield make_url(postgres[0]).set(database=name).render_as_string(hide_password=False)
    finally:
        databases.in_thread(lambda: admin(drop))


def test_nothing_starts_on_an_unmigrated_postgresql_database(empty_postgres: str) -> None:
    run_here = functools.partial(
        run, database_url=empty_postgres, database_app_role=databases.APP_ROLE
    )
    for command in ("serve", "worker", "jobs"):
        args = [command, "--port", str(closed_port())] if command == "serve" else [command]
        result = run_here(*args)
        assert result.problem.endswith("has not been migrated; run `tenvoice migrate`")
        assert "listening" not in result.stdout

    # A schema older than this build's is no better.
    upgrade(empty_postgres, databases.APP_ROLE, "0003")
    head, _ = revisions()
    behind = run_here("serve", "--port", str(closed_port())).problem
    assert behind.endswith(
        f"is at migration 0003, behind this build's {head}; run `tenvoice migrate`"
    )

    migrated = run_here("migrate")
    assert migrated.code == 0, migrated.stderr
    listed = run_here("jobs")
    assert listed.code == 0, listed.stderr


async def test_the_embedded_default_serves_only_once_migrated(tmp_path: Path) -> None:
    """`make run` in a fresh checkout: no settings at all, ./tenvoice.db."""
    port = closed_port()
    refused = run("serve", "--port", str(port), cwd=tmp_path)
    assert refused.problem == (
        "tenvoice serve: the database at sqlite:///./tenvoice.db has not been migrated; "
        "run `tenvoice migrate`"
    )
    assert "listening" not in refused.stdout
    assert not (tmp_path / "tenvoice.db").exists()  # no empty database left behind
    (tmp_path / "empty.db").touch()
    empty = run("worker", cwd=tmp_path, database_url="sqlite:///empty.db")
    assert empty.problem.endswith("has not been migrated; run `tenvoice migrate`")

    assert run("migrate", cwd=tmp_path).code == 0
    server = await asyncio.create_subprocess_exec(
        *COMMAND, "serve", "--port", str(port), cwd=tmp_path, env=environment(),
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=5) as client:
            await until_ready(client)
    finally:
        server.send_signal(signal.SIGTERM)
        # uvicorn, serving in-process, re-raises the signal once it has shut down cleanly.
        assert await asyncio.wait_for(server.wait(), 20) in (0, -signal.SIGTERM)


@pytest.mark.parametrize("workers", ["1", "2"])
def test_serve_on_a_port_in_use_fails_before_it_says_listening(
    workers: str, sqlite_template: Path, tmp_path: Path
) -> None:
    url = databases.sqlite_copy(sqlite_template, tmp_path)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run("serve", "--port", str(port), "--workers", workers, database_url=url)
    assert result.problem == (
        f"tenvoice serve: cannot listen on 127.0.0.1:{port} (already in use); "
        "stop what holds it or choose another --port"
    )
    assert "listening" not in result.stdout
    assert "worker started" not in result.stderr


def test_a_password_in_an_unparseable_url_is_not_shown() -> None:
    result = run("jobs", database_url=f"postgresql://ada:{PASSWORD}@db.example:port/x")
    assert "not a database URL (postgresql://ada:***@db.example:port/x)" in result.problem
    assert PASSWORD not in result.stderr
    url = f"postgresql://ada@127.0.0.1:{closed_port()}/x?sslmode=disable&password={PASSWORD}"
    result = run("worker", database_url=url)
    assert "x?sslmode=disable&password=*** is unreachable" in result.problem
    assert PASSWORD not in result.stderr


def test_an_invalid_setting_is_one_sentence() -> None:
    result = run("serve", database_pool_size="lots")
    assert result.problem.startswith("tenvoice serve: TENVOICE_DATABASE_POOL_SIZE is invalid (")
    assert result.problem.endswith("); correct it or unset it")
