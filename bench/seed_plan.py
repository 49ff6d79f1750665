"""The seeder's plan of the tenants, made in Python before any row is written: who they are
(ids, API keys, creation times), how many invoices each gets, and the batches they are
loaded in.
"""

import secrets
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import ClassVar

from bench.seed_sql import INVOICE_PREFIX
from tenvoice.tenants.keys import generate_key

# A batch of tenants is planned and written in one transaction; about this many invoices.
BATCH_INVOICES = 25_000
# The whale has this many invoices of other statuses per open one (about 15 %).
WHALE_OTHER_SHARE = 0.15


@dataclass(slots=True)
class TenantPlan:
    no: int
    id: uuid.UUID
    key_id: uuid.UUID
    key: str
    created_at: datetime
    invoices: int
    forced_open: int  # the whale: its first `forced_open` invoices are open
    pending: int
    name: str

    PLAN_COLUMNS: ClassVar[tuple[str, ...]] = (
        "tno",
        "tenant_id",
        "key_id",
        "prefix",
        "created_at",
        "n_total",
        "n_open",
        "n_pend",
    )

    def plan_record(self) -> tuple[object, ...]:
        """Its row of t_ten, in PLAN_COLUMNS order."""
        return (
            self.no,
            self.id,
            str(self.key_id),
            INVOICE_PREFIX,
            self.created_at,
            self.invoices,
            self.forced_open,
            self.pending,
        )


@dataclass(slots=True)
class Batch:
    tenants: list[TenantPlan]

    @property
    def invoices(self) -> int:
        return sum(t.invoices for t in self.tenants)


def _uuid7_at(moment: datetime) -> uuid.UUID:
    ms = int(moment.timestamp() * 1000)
    value = (ms & 0xFFFF_FFFF_FFFF) << 80
    value |= 0x7 << 76
    value |= secrets.randbits(12) << 64
    value |= 0b10 << 62
    value |= secrets.randbits(62)
    return uuid.UUID(int=value)


def plan_tenants(
    now: datetime, tenants: int, invoices_per_tenant: int, whale_open: int, pending: int
) -> list[TenantPlan]:
    """The tenants, created a little over a year ago, one second apart; the whale last."""
    start = now - timedelta(days=400)
    plans: list[TenantPlan] = []
    for no in range(1, tenants + 1):
        share = pending // tenants + (1 if no <= pending % tenants else 0)
        plans.append(_tenant(no, start, invoices_per_tenant, 0, share, f"Bench Tenant {no:04d}"))
    if whale_open > 0:
        others = round(whale_open * WHALE_OTHER_SHARE)
        plans.append(_tenant(tenants + 1, start, whale_open + others, whale_open, 0, "Bench Whale"))
    return plans


def _tenant(
    no: int, start: datetime, invoices: int, forced_open: int, pending: int, name: str
) -> TenantPlan:
    created = start + timedelta(seconds=no)
    return TenantPlan(
        no=no,
        id=_uuid7_at(created),
        key_id=_uuid7_at(created + timedelta(milliseconds=500)),
        key=generate_key(),
        created_at=created,
        invoices=invoices,
        forced_open=forced_open,
        pending=pending,
        name=name,
    )


def plan_batches(plans: Sequence[TenantPlan]) -> list[Batch]:
    """Tenants grouped into batches of about BATCH_INVOICES invoices, largest first."""
    batches: list[Batch] = []
    current: list[TenantPlan] = []
    size = 0
    for plan in plans:
        if current and size + plan.invoices > BATCH_INVOICES:
            batches.append(Batch(current))
            current, size = [], 0
        current.append(plan)
        size += plan.invoices
    if current:
        batches.append(Batch(current))
    return sorted(batches, key=lambda b: -b.invoices)
