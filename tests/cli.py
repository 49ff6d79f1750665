"""The `tenvoice` console script run as an operator runs it: its own process, its own
environment (only the TENVOICE_ settings a test gives it), its exit code and output."""

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import make_url

from tests import logscan

SCRIPT = Path(sys.executable).parent / "tenvoice"
COMMAND = [str(SCRIPT)] if SCRIPT.exists() else [sys.executable, "-m", "tenvoice.cli"]


def environment(**settings: str) -> dict[str, str]:
    """This process's environment without its TENVOICE_ settings, plus `settings`."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("TENVOICE_")}
    return env | {f"TENVOICE_{name.upper()}": value for name, value in settings.items()}


@dataclass(frozen=True)
class Run:
    code: int
    stdout: str
    stderr: str

    @property
    def problem(self) -> str:
        """The one line a failed command printed on stderr (asserted to be just one)."""
        assert self.code != 0, (self.stdout, self.stderr)
        assert "Traceback" not in self.stderr, self.stderr
        lines = self.stderr.splitlines()
        assert len(lines) == 1, self.stderr
        return lines[0]


def run(*args: str, cwd: Path | None = None, timeout: float = 30, **settings: str) -> Run:
    done = subprocess.run(  # noqa: S603 (our own console script)
        [*COMMAND, *args],
        env=environment(**settings),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    # What it printed at start (an embedded set-up's admin key) is a secret its logs must
    # not hold; its logs go to stderr.
    logscan.SCAN.note_secrets_in(done.stdout)
    logscan.SCAN.note_output(done.stderr)
    return Run(done.returncode, done.stdout, done.stderr)


def with_port(url: str, port: int) -> str:
    return make_url(url).set(host="127.0.0.1", port=port).render_as_string(hide_password=False)
