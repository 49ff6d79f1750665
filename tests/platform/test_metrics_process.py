"""Multiprocess mode's set-up, each case in a fresh interpreter (a metric, once created,
stays what it was created as): metrics created after `serve_directory` count into its
files, one created before it is refused, a dead process's live gauges are dropped, and
`tenvoice worker` serves its own metrics on METRICS_PORT behind the token."""

import asyncio
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import httpx

from tests.cli import COMMAND, environment
from tests.live import eventually, free_socket


def python(code: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 (this interpreter, our own code)
        [sys.executable, "-c", textwrap.dedent(code)],
        env=environment() | {"TMPDIR": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_metrics_created_after_the_set_up_count_into_the_runs_directory(tmp_path: Path) -> None:
    done = python(
        """
        import os
        from tenvoice.platform import metrics_process
        with metrics_process.serve_directory() as path:
            from tenvoice.platform.metrics import REQUESTS
            REQUESTS.labels("GET", "/healthz", "200").inc()
            print(sorted(p.name for p in path.iterdir()))
            print(os.environ["PROMETHEUS_MULTIPROC_DIR"] == str(path))
        print(path.exists(), "PROMETHEUS_MULTIPROC_DIR" in os.environ)
        """,
        tmp_path,
    )
    assert done.returncode == 0, done.stderr
    files, same, after = done.stdout.splitlines()
    assert "'counter_" in files
    assert same == "True"
    # The run's directory and its variable are gone with it.
    assert after == "False False"


def test_a_metric_created_before_the_set_up_is_refused(tmp_path: Path) -> None:
    done = python(
        """
        import tenvoice.platform.metrics
        from tenvoice.platform import metrics_process
        try:
            with metrics_process.serve_directory():
                pass
        except metrics_process.MetricsSetupError as exc:
            print(exc)
        """,
        tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert "would count in one process only" in done.stdout
    assert "tenvoice_db_pool_connections_in_use" in done.stdout


def test_the_live_gauges_of_a_dead_process_are_dropped(tmp_path: Path) -> None:
    done = python(
        """
        import subprocess, sys
        from tenvoice.platform import metrics_process
        with metrics_process.serve_directory() as path:
            child = subprocess.run(
                [sys.executable, "-c",
                 "from tenvoice.platform.metrics import POOL_IN_USE; "
                 "POOL_IN_USE.labels('write').set(3)"],
                check=True,
            )
            before = sorted(p.name.split("_")[1] for p in path.glob("gauge_*"))
            metrics_process.forget_dead_processes(path)
            after = sorted(p.name.split("_")[1] for p in path.glob("gauge_*"))
            print(before, after)
        """,
        tmp_path,
    )
    assert done.returncode == 0, done.stderr
    # The pool gauge (livesum) went with its process; the database readings stay.
    assert done.stdout.strip() == "['livesum', 'mostrecent'] ['mostrecent']"


async def test_a_worker_on_its_own_serves_its_metrics_behind_the_token(tmp_path: Path) -> None:
    with free_socket() as sock:
        port = sock.getsockname()[1]
    url = f"sqlite:///{tmp_path / 'tenvoice.db'}"
    settings = {"database_url": url, "metrics_token": "worker-token", "metrics_port": str(port)}
    migrate = await asyncio.create_subprocess_exec(
        *COMMAND, "migrate", env=environment(database_url=url),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    assert await migrate.wait() == 0
    worker = await asyncio.create_subprocess_exec(
        *COMMAND, "worker", env=environment(**settings),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=5) as client:

            async def answered() -> httpx.Response | None:
                try:
                    return await client.get("/metrics")
                except httpx.TransportError:
                    return None

            refused = await eventually(answered, timeout=30)
            served = await client.get("/metrics", headers={"Authorization": "Bearer worker-token"})
    finally:
        worker.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(worker.wait(), 30) == 0

    assert refused is not None
    assert refused.status_code == 401
    assert refused.json()["code"] == "unauthorized"
    assert served.status_code == 200
    assert "# HELP tenvoice_outbox_jobs_total" in served.text
    assert "# HELP tenvoice_outbox_job_latency_seconds" in served.text
