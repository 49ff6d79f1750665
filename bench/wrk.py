"""Driving wrk: installing it when missing, running one workload, reading its JSON summary."""

import json
import os
import shutil
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path

from bench.procs import REPO, run_tool

LUA_DIR = REPO / "bench" / "lua"
SUMMARY_PREFIX = "BENCH_JSON "


def ensure_wrk() -> str:
    """wrk's path; installed from the distribution (Debian package `wrk`) when missing."""
    found = shutil.which("wrk")
    if found:
        return found
    print("wrk is missing: installing it with apt-get", flush=True)
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = [*sudo, "apt-get", "install", "-y", "wrk"]
    if subprocess.run(install, env=env, check=False).returncode != 0:
        # A fresh machine may have no package lists yet.
        subprocess.run([*sudo, "apt-get", "update"], env=env, check=True)
        subprocess.run(install, env=env, check=True)
    found = shutil.which("wrk")
    if not found:
        raise RuntimeError("wrk could not be installed (apt-get install -y wrk)")
    return found


def wrk_version() -> str:
    # wrk -v prints "wrk <version> [epoll] Copyright ..." and the usage, and exits 1.
    out = subprocess.run(["wrk", "-v"], capture_output=True, text=True, check=False)
    words = (out.stdout or out.stderr).split()
    return words[1] if len(words) > 1 else "?"


@dataclass
class WrkResult:
    requests: int
    duration_s: float
    rps: float
    p50_ms: float
    p90_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float
    mean_ms: float
    non_2xx: int  # wrk's `status` errors: responses with status >= 400
    socket_errors: int  # connect + read + write + timeout
    timeouts: int
    counters: dict[str, int]  # the Lua scripts' own (sent, 5xx, duplicate, ...)

    @property
    def errors(self) -> int:
        return self.non_2xx + self.socket_errors

    def to_json(self) -> dict[str, object]:
        return asdict(self)


def parse_summary(stdout: str) -> WrkResult:
    line = next((ln for ln in stdout.splitlines() if ln.startswith(SUMMARY_PREFIX)), None)
    if line is None:
        raise RuntimeError("wrk printed no summary:\n" + stdout[-2000:])
    raw: dict[str, float] = json.loads(line[len(SUMMARY_PREFIX) :])
    duration = raw["duration_us"] / 1e6
    counters = {
        k: int(raw[k])
        for k in (
            "sent",
            "wraps",
            "s2xx",
            "s3xx",
            "s4xx",
            "s5xx",
            "processed",
            "duplicate",
            "ignored",
        )
    }
    return WrkResult(
        requests=int(raw["requests"]),
        duration_s=duration,
        rps=raw["requests"] / duration if duration else 0.0,
        p50_ms=raw["p50_us"] / 1000,
        p90_ms=raw["p90_us"] / 1000,
        p95_ms=raw["p95_us"] / 1000,
        p99_ms=raw["p99_us"] / 1000,
        max_ms=raw["max_us"] / 1000,
        mean_ms=raw["mean_us"] / 1000,
        non_2xx=int(raw["status"]),
        socket_errors=int(raw["connect"] + raw["read"] + raw["write"] + raw["timeout"]),
        timeouts=int(raw["timeout"]),
        counters=counters,
    )


async def run_wrk(
    url: str,
    script: str,
    *,
    data: Path | None,
    connections: int,
    seconds: float,
    threads: int = 2,
    log: Path | None = None,
) -> WrkResult:
    """One wrk run of `bench/lua/<script>` against `url` with the request file `data`."""
    argv = [
        "wrk",
        f"-t{threads}",
        f"-c{connections}",
        f"-d{max(1, round(seconds))}s",
        "--latency",
        # Longer than any answer we accept, so a slow answer is measured, not dropped.
        "--timeout",
        "5s",
        "-s",
        str(LUA_DIR / script),
        url,
    ]
    if data is not None:
        argv += ["--", str(data)]
    returncode, text = await run_tool(
        argv, env={"BENCH_LUA_DIR": str(LUA_DIR)}, seconds=seconds, log=log
    )
    if returncode != 0:
        raise RuntimeError(f"wrk exited with {returncode}:\n{text[-2000:]}")
    return parse_summary(text)
