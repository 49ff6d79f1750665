"""What a report's header names besides the results: the machine the run measured and the
versions of what it ran, so that numbers of different runs can be told apart.
"""

import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path

import asyncpg
import redis.asyncio

from bench.procs import REPO
from bench.wrk import wrk_version


def machine() -> dict[str, str]:
    cpu = "?"
    memory = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    except OSError:
        pass
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    return {
        "nproc": str(os.cpu_count()),
        "cpu": cpu,
        "ram": memory,
        "kernel": platform.release(),
        "load average at start": load,
    }


def _git(*args: str) -> str:
    out = subprocess.run(["git", "-C", str(REPO), *args], capture_output=True, text=True)
    return out.stdout.strip()


def _pgbench_version() -> str:
    # "pgbench (PostgreSQL) 15.20 (Debian ...)"
    out = subprocess.run(["pgbench", "--version"], capture_output=True, text=True)
    words = out.stdout.split()
    return words[2] if len(words) > 2 else "?"


async def versions(admin_url: str) -> dict[str, str]:
    connection = await asyncpg.connect(admin_url)
    try:
        server = await connection.fetchval("SHOW server_version")
    finally:
        await connection.close()
    found = {"Python": platform.python_version(), "PostgreSQL": str(server), "wrk": wrk_version()}
    found["pgbench"] = _pgbench_version()
    packages = ("uvicorn", "fastapi", "sqlalchemy", "asyncpg", "uvloop", "httptools", "limits")
    for package in (*packages, "redis", "opentelemetry-sdk"):
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            found[package] = "-"
    commit = _git("rev-parse", "--short", "HEAD") or "?"
    if _git("status", "--porcelain", "--", "src", "migrations"):
        commit += " + uncommitted changes in src/ or migrations/"
    found["tenvoice"] = commit
    return found


async def redis_version(url: str) -> str:
    client = redis.asyncio.Redis.from_url(url, socket_timeout=2)
    try:
        info = await client.info("server")
    finally:
        await client.aclose()
    return str(info["redis_version"])
