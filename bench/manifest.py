"""What a seeded database holds that the workloads need: tenants, their keys, and sample ids.

The seeder writes one; the runner reads it to build wrk's request lists. It is plain data so
it can be kept as JSON beside the run.
"""

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path


@dataclass(frozen=True, slots=True)
class TenantSeed:
    id: str
    api_key: str  # the raw bearer token; only its hash is in the database
    customer_id: str
    invoice_ids: list[str]  # a random sample of the tenant's invoices, for W3
    open_invoices: int  # how many of its invoices are `open` (W2 and W2b page through them)


@dataclass(frozen=True, slots=True)
class PaymentSeed:
    id: str
    invoice_id: str
    tenant_id: str
    amount: int  # minor units, the payment's full amount
    currency: str


@dataclass(frozen=True, slots=True)
class Manifest:
    database: str  # the PostgreSQL database name (or SQLite file) that was seeded
    invoices: int  # invoices in all tenants together
    tenants: list[TenantSeed]
    # One tenant far larger than the rest, so that a deep page of open invoices exists.
    whale: TenantSeed | None = None
    # Pending payments the gateway has not answered yet (W4 sends their webhooks).
    pending_payments: list[PaymentSeed] = field(default_factory=list)

    def dump(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(asdict(self)))

    @classmethod
    def load(cls, path: Path) -> "Manifest":
        raw = json.loads(path.read_text())
        whale = raw.pop("whale")
        return cls(
            tenants=[TenantSeed(**t) for t in raw.pop("tenants")],
            whale=TenantSeed(**whale) if whale else None,
            pending_payments=[PaymentSeed(**p) for p in raw.pop("pending_payments")],
            **raw,
        )
