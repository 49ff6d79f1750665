"""A private PostgreSQL cluster for tests that stop or restart their database.

The shared server at 5432 serves every other test (and other runs beside this one); a test
that takes its database away starts its own in a temporary directory and removes it after.
"""

import contextlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests import databases
from tests.live import free_socket

BIN = Path(os.environ.get("TENVOICE_TEST_POSTGRES_BIN", "/usr/lib/postgresql/15/bin"))
OS_USER = "postgres"


@dataclass(frozen=True)
class Cluster:
    directory: Path
    port: int
    owner_url: str
    app_url: str

    def restart(self) -> None:
        # "fast" ends every session at once, as an operator's restart or a failover does.
        _pg_ctl(self.directory, self.port, "restart", "-m", "fast")


def _as_postgres(command: list[str]) -> list[str]:
    # initdb refuses to run as root; tests may.
    return ["runuser", "-u", OS_USER, "--", *command] if os.geteuid() == 0 else command


def _run(command: list[str]) -> None:
    subprocess.run(_as_postgres(command), check=True, capture_output=True, timeout=60)  # noqa: S603


def _pg_ctl(directory: Path, port: int, *action: str) -> None:
    options = f"-p {port} -k {directory} -c listen_addresses=127.0.0.1 -c fsync=off"
    log = directory / "server.log"
    _run(
        [
            str(BIN / "pg_ctl"),
            "-D",
            str(directory / "data"),
            "-l",
            str(log),
            "-w",
            "-o",
            options,
            *action,
        ]
    )


def _require_binaries() -> None:
    missing = [name for name in ("initdb", "pg_ctl") if not (BIN / name).exists()]
    if os.geteuid() == 0 and shutil.which("runuser") is None:
        missing.append("runuser")
    if missing:
        message = f"a private PostgreSQL cluster needs {', '.join(missing)} (in {BIN})"
        if databases.REQUIRE_POSTGRES:
            pytest.fail(message)
        pytest.skip(message)


@contextlib.contextmanager
def private_cluster() -> Iterator[Cluster]:
    """A running cluster with the test roles and a migrated database, as databases.py sets up."""
    _require_binaries()
    # Short: the server's Unix socket lives here, and socket paths are limited to ~100 bytes.
    directory = Path(tempfile.mkdtemp(prefix="tvpg-"))
    if os.geteuid() == 0:
        shutil.chown(directory, OS_USER, OS_USER)
    with free_socket() as sock:
        port = sock.getsockname()[1]
    started = False
    try:
        _run([str(BIN / "initdb"), "-D", str(directory / "data"), "-U", "postgres",
              "--auth=trust", "-E", "UTF8", "--no-sync"])  # fmt: skip
        _pg_ctl(directory, port, "start")
        started = True
        bootstrap = f"postgresql://postgres@127.0.0.1:{port}/postgres"
        owner_url, app_url = databases.postgres_urls(bootstrap, "tenvoice_restart")
        yield Cluster(directory, port, owner_url, app_url)
    finally:
        if started:
            with contextlib.suppress(subprocess.SubprocessError):
                _pg_ctl(directory, port, "stop", "-m", "immediate")
        shutil.rmtree(directory, ignore_errors=True)
