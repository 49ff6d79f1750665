"""The plan of the SQL a list route really runs: captured while the route answers, then
EXPLAINed in the tenant's session, with sequential scans priced out (a few dozen rows would
be read sequentially whatever indexes exist; this way the plan shows which index serves)."""

import uuid
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.engine import Connection

from tenvoice.platform.db import Database


@dataclass(frozen=True)
class Explained:
    body: dict[str, Any]
    statement: str
    parameters: Any
    plan: str


async def explain_page(
    db: Database, tenant_id: str, table: str, answer: Awaitable[dict[str, Any]]
) -> Explained:
    """`answer` (a list route's call) and the plan of its page query, the one that reads
    `table` with a LIMIT."""
    captured: list[tuple[str, Any]] = []

    def capture(_conn: Connection, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if f"FROM {table}" in statement and "LIMIT" in statement:
            captured.append((statement, parameters))

    engine = db.read_engine.sync_engine
    event.listen(engine, "before_cursor_execute", capture)
    try:
        body = await answer
    finally:
        event.remove(engine, "before_cursor_execute", capture)
    [(statement, parameters)] = captured

    async with db.read(uuid.UUID(tenant_id)) as session:
        await session.execute(text("SET LOCAL enable_seqscan = off"))
        connection = await session.connection()
        result = await connection.exec_driver_sql(f"EXPLAIN {statement}", parameters)
        plan = "\n".join(row[0] for row in result)
    return Explained(body, statement, parameters, plan)


def has_sort(plan: str) -> bool:
    """A Sort node (or an Incremental Sort), not the "Sort Key" a Merge Append lists."""
    nodes = (line.strip().lstrip("-> ").split("  (cost=")[0] for line in plan.splitlines())
    return any(node.endswith("Sort") for node in nodes)
