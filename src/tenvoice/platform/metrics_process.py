"""prometheus-client's multiprocess mode: one /metrics view of every `serve` process.

Each process writes its series to files in PROMETHEUS_MULTIPROC_DIR and /metrics adds the
files up, so a scrape answered by any worker process reports the same totals. The library
picks the file-backed values when it is first imported, and a metric keeps whatever it
was created with: the variable must be set before anything imports a metric module.
`tenvoice serve` does it first thing (`serve_directory`), before uvicorn imports the app
or spawns its workers, which inherit the variable.

Without the variable (tests calling `create_app()`, one process), the default registry
is the view. This module imports no metric itself, so importing it changes nothing.
"""

import contextlib
import os
import shutil
import signal
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from types import FrameType
from typing import Any

ENV = "PROMETHEUS_MULTIPROC_DIR"
_LIVE_GAUGE_PREFIX = "gauge_live"


class MetricsSetupError(RuntimeError):
    """A metric was created before multiprocess mode was set up: it would count alone."""


def directory() -> Path | None:
    configured = os.environ.get(ENV)
    return Path(configured) if configured else None


@contextlib.contextmanager
def serve_directory() -> Iterator[Path]:
    """The directory this `serve` run's processes share, set in the environment.

    The operator's own (PROMETHEUS_MULTIPROC_DIR) is used as is: it may be shared with a
    `tenvoice worker` on the same host, so emptying it is the operator's (before start).
    Otherwise a private one is made for this run and removed when it ends, so that no
    count of an earlier run is ever added to this one's.
    """
    configured = directory()
    if configured is not None:
        configured.mkdir(parents=True, exist_ok=True)
        _use_files()
        yield configured
        return
    made = Path(tempfile.mkdtemp(prefix="tenvoice-metrics-"))
    os.environ[ENV] = str(made)
    owner = os.getpid()

    def remove() -> None:
        if os.getpid() == owner:  # never from a forked child: the directory is the run's
            shutil.rmtree(made, ignore_errors=True)

    previous = _remove_on_signal(remove)
    try:
        _use_files()
        yield made
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler if handler is not None else signal.SIG_DFL)
        os.environ.pop(ENV, None)
        remove()


_Handler = Callable[[int, FrameType | None], Any] | int | None


def _remove_on_signal(remove: Callable[[], None]) -> dict[signal.Signals, _Handler]:
    """Remove the directory on SIGTERM or SIGINT, then let the signal do what it did.

    uvicorn serving in-process (--workers 1) ends by raising the signal it caught again,
    under the handler it found: with the default one the process would die there, before
    any `finally` of ours. This handler is the one it finds.
    """
    previous: dict[signal.Signals, _Handler] = {}

    def on_signal(sig: int, _frame: FrameType | None) -> None:
        remove()
        signal.signal(sig, previous[signal.Signals(sig)] or signal.SIG_DFL)
        signal.raise_signal(sig)

    for sig in (signal.SIGTERM, signal.SIGINT):
        previous[sig] = signal.getsignal(sig)
        signal.signal(sig, on_signal)
    return previous


def _use_files() -> None:
    """Make metrics created from now on file-backed, or refuse if one exists already."""
    values = sys.modules.get("prometheus_client.values")
    if values is None:
        return  # not imported yet: it will read the variable when it is
    from prometheus_client import REGISTRY

    collectors = REGISTRY._names_to_collectors.values()  # no public listing of them
    early = sorted(
        {name for c in collectors if (name := getattr(c, "_name", "")).startswith("tenvoice_")}
    )
    if early:
        raise MetricsSetupError(
            f"metrics created before {ENV} was set would count in one process only: "
            f"{', '.join(early[:3])}...; import them after metrics_process.serve_directory()"
        )
    values.ValueClass = values.get_value_class()  # type: ignore[attr-defined]


def forget_dead_processes(path: Path) -> None:
    """Drop the live-only gauges (pool in use) of processes that are gone.

    A worker process that exits cleanly drops its own (`forget_this_process`); one that
    was killed cannot, so every scrape looks for such files. Counters of dead processes
    stay: a total must not go down.
    """
    from prometheus_client import multiprocess

    for file in path.glob(f"{_LIVE_GAUGE_PREFIX}*_*.db"):
        pid = file.stem.rpartition("_")[2]
        if pid.isdigit() and not _alive(int(pid)):
            multiprocess.mark_process_dead(int(pid), str(path))  # type: ignore[no-untyped-call]


def forget_this_process() -> None:
    path = directory()
    if path is not None:
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(os.getpid(), str(path))  # type: ignore[no-untyped-call]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process now holds the number
    return True
