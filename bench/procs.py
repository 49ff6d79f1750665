"""The processes the bench starts (API servers, the ceiling, the receiver, workers): starting
them as a user would, knowing when they are ready, sampling their memory, and stopping them.

Every process is started in its own session, so that it and everything it forks (uvicorn's
worker processes) can be stopped by its process-group id, and a ctrl-C in the terminal
reaches only the runner, which then stops them in order.
"""

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
STOP_GRACE_SECONDS = 15.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Service:
    name: str
    proc: "subprocess.Popen[bytes]"
    url: str
    log_path: Path
    workers: int

    @property
    def pid(self) -> int:
        return self.proc.pid

    def worker_pids(self) -> list[int]:
        """uvicorn's worker processes: the spawned children, not its resource tracker."""
        if self.workers <= 1:
            return [self.pid]
        return [pid for pid in children(self.pid) if b"spawn_main" in _cmdline(pid)]

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def stop(self) -> None:
        if self.proc.poll() is None:
            # The manager first, as an operator would: uvicorn stops its workers gracefully.
            self.proc.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(STOP_GRACE_SECONDS)
        # Whatever of its group is left (a stuck worker) is killed by the group's id, which
        # is this process's own: only what we started.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, signal.SIGKILL)
        self.proc.wait()


@dataclass
class Processes:
    """Everything started during the run, stopped in reverse order at the end or on error."""

    started: list[Service] = field(default_factory=list)

    def start(
        self,
        name: str,
        argv: Sequence[str],
        *,
        env: Mapping[str, str],
        log_path: Path,
        url: str = "",
        workers: int = 1,
    ) -> Service:
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with log_path.open("wb") as log:
            proc = subprocess.Popen(
                list(argv),
                env=dict(env),
                cwd=REPO,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        service = Service(name, proc, url, log_path, workers)
        self.started.append(service)
        return service

    def stop(self, service: Service) -> None:
        service.stop()
        if service in self.started:
            self.started.remove(service)

    def stop_all(self) -> None:
        while self.started:
            self.stop(self.started[-1])


async def wait_ready(
    service: Service,
    *,
    path: str = "/healthz",
    log_marker: str | None = "Application startup complete.",
    within: float = 60.0,
) -> None:
    """Until the service answers `path` with 200 and every worker has logged `log_marker`
    (one answering worker is not all of them)."""
    deadline = time.monotonic() + within
    async with httpx.AsyncClient(timeout=2.0) as client:
        while True:
            if service.proc.poll() is not None:
                raise RuntimeError(
                    f"{service.name} exited with {service.proc.returncode}:\n"
                    + service.log_text()[-3000:]
                )
            answered = False
            with contextlib.suppress(httpx.HTTPError):
                answered = (await client.get(service.url + path)).status_code == 200
            logged = log_marker is None or service.log_text().count(log_marker) >= service.workers
            if answered and logged:
                return
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"{service.name} not ready after {within:.0f}s:\n" + service.log_text()[-3000:]
                )
            await asyncio.sleep(0.1)


async def wait_log(service: Service, marker: str, count: int, within: float = 60.0) -> None:
    deadline = time.monotonic() + within
    while service.log_text().count(marker) < count:
        if service.proc.poll() is not None:
            raise RuntimeError(f"{service.name} exited:\n" + service.log_text()[-3000:])
        if time.monotonic() > deadline:
            raise RuntimeError(f"{service.name}: no {marker!r} after {within:.0f}s")
        await asyncio.sleep(0.05)


# -- memory ------------------------------------------------------------------------------


def children(pid: int) -> list[int]:
    found: list[int] = []
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except OSError:
        return found
    for task in tasks:
        try:
            found += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue
    return found


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def memory_kb(pid: int) -> tuple[int, int]:
    """(VmRSS, VmHWM) in kB; (0, 0) for a process that is gone."""
    rss = hwm = 0
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
            elif line.startswith("VmHWM:"):
                hwm = int(line.split()[1])
    except OSError:
        pass
    return rss, hwm


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time the process has used; 0 for a process that is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    # utime and stime, the 14th and 15th fields of stat(5), counted after the command name.
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class Memory:
    """Per process: the peak VmRSS sampled during a run, and VmHWM (its lifetime peak)."""

    peak_rss_mb: dict[int, float] = field(default_factory=dict)
    hwm_mb: dict[int, float] = field(default_factory=dict)

    @property
    def max_peak_mb(self) -> float:
        return max(self.peak_rss_mb.values(), default=0.0)


class RssSampler:
    """Samples VmRSS of the given processes every ~100 ms while a workload runs."""

    def __init__(self, pids: Sequence[int], interval: float = 0.1) -> None:
        self.pids = list(pids)
        self.interval = interval
        self.memory = Memory(dict.fromkeys(self.pids, 0.0))
        self._task: asyncio.Task[None] | None = None

    def _sample(self) -> None:
        for pid in self.pids:
            rss, _ = memory_kb(pid)
            self.memory.peak_rss_mb[pid] = max(self.memory.peak_rss_mb[pid], rss / 1024)

    async def _loop(self) -> None:
        while True:
            self._sample()
            await asyncio.sleep(self.interval)

    def __enter__(self) -> "RssSampler":
        self._task = asyncio.get_running_loop().create_task(self._loop())
        return self

    def __exit__(self, *_: object) -> None:
        if self._task is not None:
            self._task.cancel()
        self._sample()
        for pid in self.pids:
            self.memory.hwm_mb[pid] = memory_kb(pid)[1] / 1024


def write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


async def run_tool(
    argv: Sequence[str], *, env: Mapping[str, str], seconds: float, log: Path | None
) -> tuple[int, str]:
    """Run a load tool (wrk, pgbench) for about `seconds`; its exit code and output, kept in
    `log` with the command line."""
    proc = await asyncio.create_subprocess_exec(
        *argv,
        cwd=REPO,
        env={**os.environ, **env},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), timeout=seconds + 60)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    text = out.decode(errors="replace")
    if log is not None:
        write_text(log, " ".join(argv) + "\n\n" + text)
    assert proc.returncode is not None
    return proc.returncode, text
