"""/metrics of `tenvoice serve --workers 2`, a real subprocess: whichever worker process
answers a scrape, it reports every process's requests, and the run's metrics directory is
gone when the server stops."""

import asyncio
import json
import os
import signal
import sys
from asyncio.subprocess import Process
from collections import Counter
from functools import partial
from pathlib import Path

import httpx
from prometheus_client.mmap_dict import MmapedDict
from prometheus_client.parser import text_string_to_metric_families

from tests.live import eventually, free_socket, until_ready

TOKEN = "scrape-" + "t" * 24
HEALTHZ = {"method": "GET", "route": "/healthz", "status": "200"}


def healthz_by_pid(directory: Path) -> Counter[int]:
    """GET /healthz answers per process, as each process's counter file holds them."""
    served: Counter[int] = Counter()
    for file in directory.glob("counter_*.db"):
        pid = int(file.stem.rpartition("_")[2])
        values = MmapedDict.read_all_values_from_file(str(file))  # type: ignore[no-untyped-call]
        for key, value, _, _ in values:
            _, sample, labels, _ = json.loads(key)
            if sample == "tenvoice_http_requests_total" and labels == HEALTHZ:
                served[pid] += int(value)
    return served


def healthz_total(exposition: str) -> float:
    for family in text_string_to_metric_families(exposition):
        for sample in family.samples:
            if sample.name == "tenvoice_http_requests_total" and sample.labels == HEALTHZ:
                return sample.value
    return 0.0


async def _serve(tmp_path: Path, workers: int, **settings: str) -> tuple[Process, Path, str]:
    """A migrated SQLite file served by `tenvoice serve --workers N` on a free port; its
    process, the temporary directory its metrics directory is made in, and its address."""
    with free_socket() as sock:
        port = sock.getsockname()[1]
    temp = tmp_path / "tmp"
    temp.mkdir()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("TENVOICE_", "PROMETHEUS"))},
        "TENVOICE_DATABASE_URL": f"sqlite:///{tmp_path / 'tenvoice.db'}",
        **{f"TENVOICE_{name.upper()}": value for name, value in settings.items()},
        # The run's private metrics directory is made here, where the test can look.
        "TMPDIR": str(temp),
    }
    migrate = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tenvoice.cli", "migrate", env=env,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    assert await migrate.wait() == 0
    server = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tenvoice.cli", "serve", "--port", str(port),
        "--workers", str(workers),
        env=env, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    return server, temp, f"http://127.0.0.1:{port}"


async def test_every_scrape_reports_the_requests_of_both_worker_processes(
    tmp_path: Path,
) -> None:
    server, temp, base = await _serve(tmp_path, 2, metrics_token=TOKEN)
    try:
        async with httpx.AsyncClient(base_url=base, timeout=10) as client:
            await until_ready(client)
        (directory,) = temp.glob("tenvoice-metrics-*")
        sent = await _until_both_processes_served(base, directory)
        auth = {"Authorization": f"Bearer {TOKEN}"}
        scrapes = []
        for _ in range(8):
            # A connection each, so that the scrapes too go to either process.
            async with httpx.AsyncClient(base_url=base, timeout=10) as client:
                response = await client.get("/metrics", headers=auth)
            assert response.status_code == 200, response.text
            scrapes.append(healthz_total(response.text))
        async with httpx.AsyncClient(base_url=base, timeout=10) as client:
            refused = await client.get("/metrics")
    finally:
        server.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(server.wait(), 30) == 0

    assert scrapes == [sent] * len(scrapes)
    assert refused.status_code == 401
    # A private directory per run, removed with it.
    assert not list(temp.glob("tenvoice-metrics-*"))


async def test_one_process_serve_removes_its_directory_when_stopped(tmp_path: Path) -> None:
    server, temp, base = await _serve(tmp_path, 1)
    try:
        async with httpx.AsyncClient(base_url=base, timeout=10) as client:
            await until_ready(client)
            scraped = await client.get("/metrics")
        # The same code path as with more processes: a directory of files.
        (directory,) = temp.glob("tenvoice-metrics-*")
        assert list(directory.glob("counter_*.db"))
    finally:
        server.send_signal(signal.SIGTERM)
        # uvicorn, serving in-process, re-raises the signal once it has shut down cleanly.
        assert await asyncio.wait_for(server.wait(), 30) in (0, -signal.SIGTERM)

    assert scraped.status_code == 200
    assert healthz_total(scraped.text) == 0
    assert not list(temp.glob("tenvoice-metrics-*"))


async def _until_both_processes_served(base: str, directory: Path) -> int:
    """Send GET /healthz on fresh connections, a few at a time, until both processes have
    answered some (the kernel hands each new connection to either); how many were sent."""
    sent = 0
    while sent < 600:
        async with asyncio.TaskGroup() as group:
            for _ in range(6):
                group.create_task(_healthz(base))
        sent += 6
        # A request is counted just after its answer is sent: give the last ones a moment.
        served = await eventually(partial(_counted, directory, sent), timeout=10)
        if served is not None and len(served) == 2:
            return sent
    raise AssertionError(f"one process answered all {sent} requests: {served}")


async def _counted(directory: Path, sent: int) -> Counter[int] | None:
    served = healthz_by_pid(directory)
    return served if sum(served.values()) == sent else None


async def _healthz(base: str) -> None:
    async with httpx.AsyncClient(base_url=base, timeout=10) as client:
        assert (await client.get("/healthz")).status_code == 200
