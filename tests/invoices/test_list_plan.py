"""The list query has an index led by tenant_id that serves its filter and its order."""

import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import event, text
from sqlalchemy.engine import Connection

from tenvoice.platform.db import Database
from tests.conftest import TenantHandle, make_customer, make_invoice
from tests.invoices.support import act_ok, list_invoices


@pytest.mark.backend("postgresql")
async def test_open_invoices_newest_first_use_the_tenant_status_index(
    client: httpx.AsyncClient,
    db: Database,
    tenant_a: TenantHandle,
    tenant_b: TenantHandle,
) -> None:
    for tenant in (tenant_a, tenant_b):
        customer = await make_customer(client, tenant)
        for n in range(12):
            invoice = await make_invoice(client, tenant, customer["id"])
            if n % 3:
                await act_ok(client, tenant, invoice["id"], "finalize")

    # Capture the SQL the endpoint really runs, rather than a hand-written look-alike.
    captured: list[tuple[str, Any]] = []

    def capture(_conn: Connection, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if "FROM invoices" in statement and "LIMIT" in statement:
            captured.append((statement, parameters))

    engine = db.read_engine.sync_engine
    event.listen(engine, "before_cursor_execute", capture)
    try:
        body = await list_invoices(client, tenant_a, {"status": "open", "limit": "50"})
    finally:
        event.remove(engine, "before_cursor_execute", capture)
    assert len(body["data"]) == 8
    [(statement, parameters)] = captured
    assert "ORDER BY invoices.created_at DESC, invoices.id DESC" in statement
    assert 51 in tuple(parameters)  # limit + 1: one row more tells whether a next page exists

    async with db.read(uuid.UUID(tenant_a.id)) as session:
        # A dozen rows would be scanned sequentially whatever indexes exist; with sequential
        # scans priced out, the planner shows which index it can use.
        await session.execute(text("SET LOCAL enable_seqscan = off"))
        connection = await session.connection()
        result = await connection.exec_driver_sql(f"EXPLAIN {statement}", parameters)
        plan = "\n".join(row[0] for row in result)

    assert "ix_invoices_tenant_status_created" in plan, plan
    # The index delivers the order: no separate sort of the matching rows.
    assert not any(line.strip().lstrip("-> ").startswith("Sort") for line in plan.splitlines()), (
        plan
    )
