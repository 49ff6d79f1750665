"""What a run measured, kept as plain data: written to bench/results/results.json and read by
the report."""

from dataclasses import asdict, dataclass, field
from typing import Any

from bench.capture import Capture
from bench.checks import WebhookCheck
from bench.credit_notes import CreditNoteCheck
from bench.drain import DrainResult
from bench.fanout import FanoutResult
from bench.limits import PgbenchResult
from bench.procs import Memory
from bench.wrk import WrkResult


@dataclass
class Measured:
    key: str  # "W1", "W2b-cursor", "W1@10k", ...
    title: str
    database: str  # "1M", "10k", "SQLite"
    connections: int
    workers: int = 0  # worker processes of the server measured (`measure` sets it)
    wrk: WrkResult | None = None
    warmup: WrkResult | None = None
    memory: Memory = field(default_factory=Memory)
    error: str | None = None


@dataclass
class SeedInfo:
    label: str
    database: str
    tenants: int
    invoices: int
    whale_open: int
    pending_payments: int
    seconds: float


@dataclass
class CaptureInfo:
    statements: int
    round_trips: int
    script: str | None
    script_statements: int | None

    @classmethod
    def of(
        cls, capture: Capture, script: str | None, script_statements: int | None
    ) -> "CaptureInfo":
        return cls(len(capture.statements), capture.round_trips, script, script_statements)


@dataclass
class DeepPage:
    page: int
    cursor_source: str  # "shortcut" (from the database) or "walked" (through the API)
    matches_offset: bool  # the cursor page holds the same invoices as the OFFSET page


@dataclass
class EndpointDeliveries:
    """W1's endpoints (one per tenant) and their deliveries by status at some moment."""

    database: str
    moment: str
    endpoints: int
    by_status: dict[str, int]


@dataclass
class Results:
    quick: bool
    started_at: str
    machine: dict[str, str] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)
    seeded: list[SeedInfo] = field(default_factory=list)
    ceiling: Measured | None = None
    pgbench: dict[str, PgbenchResult] = field(default_factory=dict)
    runs: dict[str, Measured] = field(default_factory=dict)
    captures: dict[str, CaptureInfo] = field(default_factory=dict)
    deep_page: DeepPage | None = None
    webhooks: WebhookCheck | None = None
    credit_notes: CreditNoteCheck | None = None
    drain: DrainResult | None = None
    fanout: FanoutResult | None = None
    w1_deliveries: list[EndpointDeliveries] = field(default_factory=list)
    # What the tracing stage's OTLP receiver took: {"exports": n, "spans": n}.
    tracing: dict[str, int] | None = None
    notes: list[str] = field(default_factory=list)
    wall_s: float = 0.0

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        if self.webhooks is not None:
            data["webhooks"] = self.webhooks.to_json()
        if self.credit_notes is not None:
            data["credit_notes"] = self.credit_notes.to_json()
        if self.drain is not None:
            data["drain"] = self.drain.to_json()
        if self.fanout is not None:
            data["fanout"] = self.fanout.to_json()
        return data
