"""The SQL one request sends, read from PostgreSQL's own log.

The service role gets `log_statement = 'all'` (ALTER ROLE, so only new sessions of that
role log; nothing server-wide changes) while a one-worker server with no outbox worker
answers a few requests; the lines logged for our role and database between two marks are
that request's statements. The bench's pgbench scripts are written from these captures, and
each run compares them, so a change in the app's SQL shows in the report.
"""

import re
from dataclasses import dataclass
from pathlib import Path

import asyncpg

# "%m [%p] %q%u@%d " is Debian's default log_line_prefix: time, pid, user@database.
_ENTRY = re.compile(
    r"^(?P<time>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d+)? \w+) \[(?P<pid>\d+)\] "
    r"(?P<who>\S*@\S*) (?P<level>[A-Z]+):  (?P<text>.*)$"
)
_EXECUTE = re.compile(r"^execute (?P<name>[^:]+): ")


@dataclass(frozen=True, slots=True)
class Entry:
    pid: int
    level: str  # LOG, DETAIL, ...
    text: str


@dataclass
class Capture:
    workload: str
    entries: list[Entry]

    @property
    def messages(self) -> list[str]:
        """What the server logged as run: a simple query (which may hold several
        statements) or one execute of a prepared statement."""
        return [
            e.text
            for e in self.entries
            if e.level == "LOG" and (e.text.startswith("statement: ") or _EXECUTE.match(e.text))
        ]

    @property
    def statements(self) -> list[str]:
        """Single SQL statements: a simple query of several counts each one."""
        found: list[str] = []
        for text in self.messages:
            if text.startswith("statement: "):
                found += [s.strip() for s in text[len("statement: ") :].split(";") if s.strip()]
            else:
                found.append(text)
        return found

    @property
    def round_trips(self) -> int:
        """Messages, counting a run of executes of one prepared statement as one trip:
        asyncpg's executemany pipelines them (SQLAlchemy's multi-row inserts)."""
        trips = 0
        previous: str | None = None
        for text in self.messages:
            match = _EXECUTE.match(text)
            name = match.group("name") if match else None
            if name is None or name != previous:
                trips += 1
            previous = name
        return trips

    def dump(self, path: Path) -> None:
        lines = [f"-- {self.workload}: {len(self.statements)} statements, "]
        lines[0] += f"~{self.round_trips} round trips (one request, warm connection)\n"
        for e in self.entries:
            lines.append(f"[{e.pid}] {e.level}:  {e.text}\n")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(lines))


async def server_log(admin_url: str) -> Path | None:
    """Where this server writes its log: the collector's file, or Debian's stderr file."""
    connection = await asyncpg.connect(admin_url)
    try:
        current = await connection.fetchval("SELECT pg_current_logfile()")
        data_dir = await connection.fetchval("SHOW data_directory")
        major = (await connection.fetchval("SHOW server_version")).split(".")[0]
    finally:
        await connection.close()
    return _find_log(current, data_dir, major)


def _find_log(current: str | None, data_dir: str, major: str) -> Path | None:
    if current:
        path = Path(current) if Path(current).is_absolute() else Path(data_dir) / current
        return path if path.exists() else None
    # No collector: Debian's pg_ctlcluster sends the server's stderr here.
    candidates = sorted(
        Path("/var/log/postgresql").glob(f"postgresql-{major}-*.log"),
        key=lambda p: p.stat().st_mtime,
        reverse=True,
    )
    return candidates[0] if candidates else None


class LogTail:
    """What the server logged after `mark()`, for one role and database."""

    def __init__(self, path: Path, role: str, database: str) -> None:
        self.path = path
        self.who = f"{role}@{database}"
        self.offset = 0

    def mark(self) -> None:
        self.offset = self.path.stat().st_size

    def read(self) -> list[Entry]:
        with self.path.open("rb") as log:
            log.seek(self.offset)
            text = log.read().decode(errors="replace")
        entries: list[Entry] = []
        mine = False
        for line in text.splitlines():
            match = _ENTRY.match(line)
            if match:
                mine = match.group("who") == self.who
                if mine:
                    entries.append(
                        Entry(int(match.group("pid")), match.group("level"), match.group("text"))
                    )
            elif mine and entries:
                # A statement spanning lines: the continuation lines carry no prefix.
                last = entries[-1]
                entries[-1] = Entry(last.pid, last.level, last.text + "\n" + line)
        return entries


def script_statements(path: Path) -> int:
    """SQL statements in a pgbench script: each ends with `;` or with `\\gset`."""
    count = 0
    for raw in path.read_text().splitlines():
        line = raw.split("--", 1)[0].strip()
        if not line or (line.startswith("\\") and not line.startswith("\\gset")):
            continue
        if line.endswith(";") or "\\gset" in line:
            count += 1
    return count
