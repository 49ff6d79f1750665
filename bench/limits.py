"""The machine's limits, measured in the same run: pgbench sending each workload's SQL.

pgbench scripts cannot hold the seeded keys and ids, so the runner puts them in small
lookup tables (`bench_pg_*`, numbered from 1) that each script reads inside a statement the
app sends anyway (`... WHERE key_hash = (SELECT key_hash FROM bench_pg_tenants WHERE n =
:n)`): same round trips, one extra primary-key probe. New ids come from `bench_uuid7()`,
time-ordered like the app's uuid7, so inserts land where the app's do in every index;
`bench_invoice_json()` writes the invoice snapshot W1's events carry, as the JSON text the
app sends.
"""

import re
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg

from bench.manifest import Manifest, PaymentSeed
from bench.procs import REPO, run_tool
from tenvoice.platform.tokens import token_hash

SCRIPTS = REPO / "bench" / "pgbench"
# The webhook id w4_webhook_repeat.sql sends again and again: a repeat, as 20% of W4 are.
REPEATED_ID = "msg_bench_pgbench_repeat"

# RFC 9562 layout: 48-bit unix milliseconds, version 7, 12 random bits, variant, 62 random.
# bench_tenant(): the request's tenant as the row-level security policies read it.
_FUNCTIONS = """
CREATE OR REPLACE FUNCTION bench_uuid7() RETURNS uuid LANGUAGE sql VOLATILE AS $$
  SELECT (lpad(to_hex(floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint), 12, '0')
          || '7' || substr(md5(random()::text), 1, 3)
          || to_hex(8 + floor(random() * 4)::int) || substr(md5(random()::text), 1, 15))::uuid
$$;
CREATE OR REPLACE FUNCTION bench_tenant() RETURNS uuid LANGUAGE sql STABLE AS $$
  SELECT current_setting('app.tenant_id')::uuid
$$;
CREATE OR REPLACE FUNCTION bench_invoice_json(invoice uuid, customer uuid, number bigint)
RETURNS text LANGUAGE sql VOLATILE AS $$
  SELECT format('{"id": "%1$s", "tax": "2.70", "memo": null, "items": ['
    || '{"id": "%1$s", "tax": "1.10", "total": "11.10", "taxRate": "11", "quantity": "1", '
    || '"subtotal": "10.00", "unitPrice": "10.00", "description": "Item 0"}, '
    || '{"id": "%1$s", "tax": "1.10", "total": "11.10", "taxRate": "11", "quantity": "2", '
    || '"subtotal": "10.00", "unitPrice": "5.00", "description": "Item 1"}, '
    || '{"id": "%1$s", "tax": "0.50", "total": "5.00", "taxRate": "11", "quantity": "3", '
    || '"subtotal": "4.50", "unitPrice": "1.50", "description": "Item 2"}], '
    || '"total": "27.20", "number": "INV-%3$s", "paidAt": null, "sentAt": null, '
    || '"status": "open", "dueDate": "%4$s", "overdue": false, "currency": "USD", '
    || '"metadata": {}, "subtotal": "24.50", "voidedAt": null, "amountDue": "27.20", '
    || '"createdAt": "%5$s", "hostedUrl": null, "issueDate": "%6$s", "updatedAt": "%5$s", '
    || '"amountPaid": "0.00", "customerId": "%2$s", "finalizedAt": "%5$s", '
    || '"markedUncollectibleAt": null}',
    invoice, customer, number, current_date + 30,
    to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'), current_date)
$$;
"""


@dataclass
class PgbenchResult:
    script: str
    tps: float
    latency_ms: float
    transactions: int
    failed: int
    error: str | None  # the first error a client aborted on, if any

    def to_json(self) -> dict[str, object]:
        return asdict(self)


async def prepare(
    admin_db_url: str, app_role: str, manifest: Manifest, payments: list[PaymentSeed]
) -> dict[str, str]:
    """The lookup tables, bench_uuid7() and the inbox row the repeat script collides with;
    returns the scripts' -D variables (table sizes, W2's status and page size)."""
    tenants = [
        (n, t.id, token_hash(t.api_key), t.customer_id) for n, t in enumerate(manifest.tenants, 1)
    ]
    invoices = [
        (n, t.id, token_hash(t.api_key), invoice_id)
        for n, (t, invoice_id) in enumerate(
            ((t, i) for t in manifest.tenants for i in t.invoice_ids), 1
        )
    ]
    paid = [(n, p.id) for n, p in enumerate(payments, 1)]
    connection = await asyncpg.connect(admin_db_url)
    try:
        await connection.execute(_FUNCTIONS)
        await connection.execute(
            """
            DROP TABLE IF EXISTS bench_pg_tenants, bench_pg_invoices, bench_pg_payments;
            CREATE TABLE bench_pg_tenants (
                n int PRIMARY KEY, tenant_id uuid, key_hash text, customer_id uuid);
            CREATE TABLE bench_pg_invoices (
                n int PRIMARY KEY, tenant_id uuid, key_hash text, invoice_id uuid);
            CREATE TABLE bench_pg_payments (n int PRIMARY KEY, payment_id uuid);
            """
        )
        await connection.copy_records_to_table("bench_pg_tenants", records=tenants)
        await connection.copy_records_to_table("bench_pg_invoices", records=invoices)
        await connection.copy_records_to_table("bench_pg_payments", records=paid)
        await connection.execute(
            f"GRANT SELECT ON bench_pg_tenants, bench_pg_invoices, bench_pg_payments TO {app_role};"
            "ANALYZE bench_pg_tenants, bench_pg_invoices, bench_pg_payments"
        )
        await connection.execute(
            "INSERT INTO inbox_messages (source, message_id, tenant_id, message_type, outcome,"
            " detail, received_at) VALUES ('gateway', $1, $2, 'payment.succeeded', 'processed',"
            " NULL, now()) ON CONFLICT DO NOTHING",
            REPEATED_ID,
            uuid.UUID(payments[0].tenant_id) if payments else None,
        )
    finally:
        await connection.close()
    return {
        "tenants": str(len(tenants)),
        "invoices": str(len(invoices)),
        "payments": str(len(paid)),
        "repeated_id": REPEATED_ID,
        "status": "open",
        "page_limit": "51",  # the app asks for one more than the page, to know hasMore
        "page_size": "50",
    }


def _connection_args(url: str) -> tuple[list[str], dict[str, str]]:
    parts = urlsplit(url)
    args = ["-h", parts.hostname or "127.0.0.1", "-p", str(parts.port or 5432)]
    if parts.username:
        args += ["-U", parts.username]
    args.append(parts.path.lstrip("/"))
    env = {"PGPASSWORD": parts.password} if parts.password else {}
    return args, env


def _number(pattern: str, text: str) -> float:
    match = re.search(pattern, text)
    return float(match.group(1)) if match else 0.0


async def run(
    scripts: list[tuple[str, int]],
    url: str,
    *,
    seconds: float,
    variables: dict[str, str],
    clients: int = 16,
    threads: int = 2,
    log: Path | None = None,
) -> PgbenchResult:
    """`pgbench -n -M prepared -c16 -j2 -T<s>` of bench/pgbench/<script>@<weight>..., as the
    URL's role (the service role: row-level security binds pgbench as it binds the app)."""
    connection, env = _connection_args(url)
    argv = [
        "pgbench",
        "-n",
        "-M",
        "prepared",
        f"-c{clients}",
        f"-j{threads}",
        f"-T{max(1, round(seconds))}",
        *(f"-D{k}={v}" for k, v in variables.items()),
        *(f"-f{SCRIPTS / script}@{weight}" for script, weight in scripts),
        *connection,
    ]
    returncode, text = await run_tool(argv, env=env, seconds=seconds, log=log)
    error = next((ln.strip() for ln in text.splitlines() if "aborted" in ln or "ERROR" in ln), None)
    if returncode not in (0, 2) and error is None:
        error = f"pgbench exited with {returncode}: {text[-500:]}"
    return PgbenchResult(
        script=" + ".join(f"{script}@{weight}" for script, weight in scripts),
        tps=_number(r"tps = ([\d.]+) \(without initial connection time\)", text),
        latency_ms=_number(r"latency average = ([\d.]+) ms", text),
        transactions=int(_number(r"number of transactions actually processed: (\d+)", text)),
        failed=int(_number(r"number of failed transactions: (\d+)", text)),
        error=error,
    )
