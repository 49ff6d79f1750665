"""The seeder's SQL: the session's temporary tables, and the statements that plan a batch of
tenants in them, copy it into the real tables, and read back what the manifest needs.

The timeline rows are in `bench.seed_timeline`; `bench.seed` runs these (see its docstring).
Values are pseudo-random but deterministic: `_hash` of the tenant and invoice number, salted
by the seed ($2 of PLAN_INVOICES).
"""

CURRENCY = "USD"  # every seeded amount is in cents: the SQL below formats 2 decimals
INVOICE_PREFIX = "INV"
CUSTOMERS_PER_TENANT = 20
# Tax rates of the lines, at scale 4: 0 %, 10 % and (most often) 11 %.
TAX_RATES = "ARRAY[0, 100000, 110000, 110000, 110000]::bigint[]"
DESCRIPTIONS = (
    "ARRAY['Consulting', 'Support', 'Licence', 'Hosting', 'Training', 'Design',"
    " 'Maintenance', 'Implementation']"
)


def uuid7(ts: str) -> str:
    """A UUIDv7 (RFC 9562) minted at timestamp expression `ts`, like the app's ids."""
    return (
        "encode(overlay(uuid_send(gen_random_uuid()) placing int8send("
        f"((floor(extract(epoch FROM {ts}) * 1000)::bigint << 16)"
        " | 28672 | (random() * 4095)::int)) from 1 for 8), 'hex')::uuid"
    )


def money(minor: str) -> str:
    """Minor units (>= 0) as the wire's decimal string, 2 digits (USD): 27750 -> '277.50'."""
    return f"(({minor}) / 100)::text || '.' || lpad((({minor}) % 100)::text, 2, '0')"


def request_id() -> str:
    """What the HTTP middleware mints when the client sends none: uuid4().hex."""
    return "replace(gen_random_uuid()::text, '-', '')"


def _hash(k: int) -> str:
    """A deterministic non-negative 63-bit value per (tenant, invoice, k), salted by the seed."""
    return (
        f"(hashint8extended(g.i, ($2::bigint * 1000003 + t.tno) * 64 + {k}) & 9223372036854775807)"
    )


GATEWAY_REFERENCE = (
    # tenvoice.gateway.simulator.reference(): "sim_ch_" + sha256(str(payment id))[:24]
    "'sim_ch_' || left(encode(sha256(convert_to(v.pay_id::text, 'UTF8')), 'hex'), 24)"
)


SESSION_SQL = """
SET synchronous_commit = off;
SET jit = off;
SET temp_buffers = '256MB';
SET work_mem = '128MB';
CREATE TEMP TABLE t_ten (
    tno int NOT NULL,
    tenant_id uuid NOT NULL,
    key_id text NOT NULL,
    prefix text NOT NULL,
    created_at timestamptz NOT NULL,
    n_total int NOT NULL,
    n_open int NOT NULL,
    n_pend int NOT NULL
) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE t_cust (
    tenant_id uuid NOT NULL,
    key_id text NOT NULL,
    k int NOT NULL,
    id uuid NOT NULL,
    name text NOT NULL,
    email text NOT NULL,
    created_at timestamptz NOT NULL
) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE t_inv (
    tenant_id uuid NOT NULL,
    key_id text NOT NULL,
    i int NOT NULL,
    id uuid NOT NULL,
    customer_id uuid NOT NULL,
    status text NOT NULL,
    issue_date date NOT NULL,
    due_date date NOT NULL,
    created_at timestamptz NOT NULL,
    finalized_at timestamptz,
    end_at timestamptz,
    overdue_at timestamptz,
    number text,
    number_sort bigint,
    q1 bigint, q2 bigint, q3 bigint,
    p1 bigint, p2 bigint, p3 bigint,
    r1 bigint, r2 bigint, r3 bigint,
    s1 bigint, s2 bigint, s3 bigint,
    x1 bigint, x2 bigint, x3 bigint,
    d1 text, d2 text, d3 text,
    subtotal bigint NOT NULL,
    tax bigint NOT NULL,
    total bigint NOT NULL,
    pend boolean NOT NULL,
    sampled boolean NOT NULL,
    pay_id uuid,
    pay_at timestamptz,
    pay_method text,
    req_end text
) ON COMMIT DELETE ROWS;
-- The whale's planned invoices, written a slice per later batch of the same connection.
CREATE TEMP TABLE t_whale (LIKE t_inv);
"""

# Twenty customers per tenant, registered a few minutes apart just after the tenant.
PLAN_CUSTOMERS = f"""
INSERT INTO t_cust (tenant_id, key_id, k, id, name, email, created_at)
SELECT c.tenant_id, c.key_id, c.k, {uuid7("c.at")}, c.name, c.email, c.at
FROM (
    SELECT t.tenant_id, t.key_id, k,
           'Customer ' || k || ' of tenant ' || t.tno AS name,
           'billing' || k || '@customer' || k || '.t' || t.tno || '.example.com' AS email,
           t.created_at + interval '1 hour' + k * interval '7 minutes'
               + ((t.tno * 7919 + k * 104729) % 1000000) * interval '1 microsecond' AS at
    FROM t_ten t CROSS JOIN generate_series(1, {CUSTOMERS_PER_TENANT}) AS k
) AS c
"""

# $1 now, $2 seed, $3 today (UTC), $4 invoices sampled per tenant.
# Layers: raw hashes -> status and dates -> finalize/terminal/overdue times, line amounts ->
# window ranks (gap-free numbers per tenant and year of finalize, pending picks, sample).
PLAN_INVOICES = f"""
INSERT INTO t_inv
SELECT
    w.tenant_id, w.key_id, w.i, {uuid7("w.created_at")}, c.id, w.status, w.issue_date, w.due_date,
    w.created_at, w.finalized_at, w.end_at,
    CASE WHEN w.overdue_try < $1::timestamptz AND (w.status = 'open' OR w.end_at > w.overdue_try)
         THEN w.overdue_try END,
    CASE WHEN w.finalized_at IS NOT NULL THEN
        w.prefix || '-' || w.fin_year || '-'
        || CASE WHEN w.seq < 100000 THEN lpad(w.seq::text, 5, '0') ELSE w.seq::text END
    END,
    CASE WHEN w.finalized_at IS NOT NULL THEN w.fin_year::bigint * 1000000000000 + w.seq END,
    w.q1, w.q2, w.q3, w.p1, w.p2, w.p3, w.r1, w.r2, w.r3,
    w.s1, w.s2, w.s3, w.x1, w.x2, w.x3, w.d1, w.d2, w.d3,
    w.s1 + w.s2 + w.s3, w.x1 + w.x2 + w.x3, w.s1 + w.s2 + w.s3 + w.x1 + w.x2 + w.x3,
    w.pend, w.sample_rank <= $4::int,
    CASE WHEN w.status = 'paid' OR w.pend THEN
        {uuid7("CASE WHEN w.pend THEN w.pend_at ELSE w.end_at - w.pay_lead END")}
    END,
    CASE WHEN w.pend THEN w.pend_at WHEN w.status = 'paid' THEN w.end_at - w.pay_lead END,
    CASE WHEN w.status = 'paid' OR w.pend THEN
        (ARRAY['card', 'bank_transfer', 'qris'])[1 + w.hmisc % 3]
    END,
    CASE WHEN w.end_at IS NOT NULL THEN {request_id()} END
FROM (
    SELECT a.*,
           row_number() OVER (PARTITION BY a.tenant_id, a.fin_year
                              ORDER BY a.finalized_at, a.i) AS seq,
           a.status = 'open' AND row_number() OVER (PARTITION BY a.tenant_id, a.status
                                                    ORDER BY a.hpend) <= a.n_pend AS pend,
           row_number() OVER (PARTITION BY a.tenant_id ORDER BY a.hsample) AS sample_rank
    FROM (
        SELECT m.*,
               extract(year FROM m.finalized_at AT TIME ZONE 'UTC')::int AS fin_year,
               CASE WHEN m.status IN ('paid', 'void', 'uncollectible') THEN
                   m.finalized_at
                   + (300 + m.hend % GREATEST(1, LEAST(45 * 86400, floor(extract(
                        epoch FROM $1::timestamptz - m.finalized_at))::bigint - 3900)))
                     * interval '1 second'
                   + (m.hmisc % 1000000) * interval '1 microsecond'
               END AS end_at,
               CASE WHEN m.finalized_at IS NOT NULL THEN
                   GREATEST((m.due_date + 1)::timestamp AT TIME ZONE 'UTC',
                            m.finalized_at + interval '1 second')
                   + ((m.hmisc >> 20) % 900000) * interval '1 microsecond'
               END AS overdue_try,
               (2 + (m.hmisc >> 40) % 28) * interval '1 second' AS pay_lead,
               $1::timestamptz - (60 + (m.hpend >> 32) % 3540) * interval '1 second' AS pend_at,
               m.q1 * m.p1 AS s1, m.q2 * m.p2 AS s2, m.q3 * m.p3 AS s3,
               round((m.q1 * m.p1)::numeric * m.r1 / 1000000)::bigint AS x1,
               round((m.q2 * m.p2)::numeric * m.r2 / 1000000)::bigint AS x2,
               round((m.q3 * m.p3)::numeric * m.r3 / 1000000)::bigint AS x3
        FROM (
            SELECT s.*,
                   s.issue_date + s.due_days AS due_date,
                   CASE WHEN s.status <> 'draft' THEN
                       s.created_at + s.fin_us * interval '1 microsecond'
                   END AS finalized_at
            FROM (
                SELECT r.*,
                       CASE WHEN r.i <= r.n_open THEN 'open'
                            WHEN r.n_open > 0 THEN
                                CASE WHEN r.h1 % 55 < 10 THEN 'draft'
                                     WHEN r.h1 % 55 < 45 THEN 'paid'
                                     WHEN r.h1 % 55 < 50 THEN 'void'
                                     ELSE 'uncollectible' END
                            ELSE
                                CASE WHEN r.h1 % 100 < 10 THEN 'draft'
                                     WHEN r.h1 % 100 < 55 THEN 'open'
                                     WHEN r.h1 % 100 < 90 THEN 'paid'
                                     WHEN r.h1 % 100 < 95 THEN 'void'
                                     ELSE 'uncollectible' END
                       END AS status,
                       r.issue_date0::timestamp AT TIME ZONE 'UTC'
                           + r.h3 % 86400000000 * interval '1 microsecond' AS created_at,
                       r.issue_date0 AS issue_date,
                       (r.h4 % 31)::int AS due_days,
                       60000000 + r.h5 % 7140000000 AS fin_us,
                       1 + r.hq % 10 AS q1, 1 + (r.hq >> 8) % 10 AS q2,
                       1 + (r.hq >> 16) % 10 AS q3,
                       100 + r.hp % 49901 AS p1, 100 + (r.hp >> 20) % 49901 AS p2,
                       100 + (r.hp >> 40) % 49901 AS p3,
                       ({TAX_RATES})[1 + r.hr % 5] AS r1,
                       ({TAX_RATES})[1 + (r.hr >> 8) % 5] AS r2,
                       ({TAX_RATES})[1 + (r.hr >> 16) % 5] AS r3,
                       ({DESCRIPTIONS})[1 + (r.hr >> 24) % 8] AS d1,
                       ({DESCRIPTIONS})[1 + (r.hr >> 32) % 8] AS d2,
                       ({DESCRIPTIONS})[1 + (r.hr >> 40) % 8] AS d3
                FROM (
                    SELECT t.tenant_id, t.tno, t.key_id, t.prefix, t.n_open, t.n_pend, g.i,
                           $3::date - 2 - ({_hash(2)} % 365)::int AS issue_date0,
                           {_hash(1)} AS h1, {_hash(3)} AS h3, {_hash(4)} AS h4,
                           {_hash(5)} AS h5, {_hash(6)} AS hend,
                           1 + {_hash(7)} % {CUSTOMERS_PER_TENANT} AS cix,
                           {_hash(8)} AS hq, {_hash(9)} AS hp, {_hash(10)} AS hr,
                           {_hash(11)} AS hpend, {_hash(12)} AS hmisc, {_hash(13)} AS hsample
                    FROM t_ten t CROSS JOIN LATERAL generate_series(1, t.n_total) AS g(i)
                ) AS r
            ) AS s
        ) AS m
    ) AS a
) AS w
JOIN t_cust c ON c.tenant_id = w.tenant_id AND c.k = w.cix
"""

WRITE_CUSTOMERS = """
INSERT INTO customers (tenant_id, id, name, email, phone, address, metadata,
                       created_at, updated_at, deleted_at)
SELECT tenant_id, id, name, email, NULL, NULL, '{}'::jsonb, created_at, created_at, NULL
FROM t_cust ORDER BY created_at
"""

WRITE_INVOICES = f"""
INSERT INTO invoices (tenant_id, id, number, number_sort, customer_id, currency, status,
                      issue_date, due_date, subtotal, tax, total, amount_paid, amount_pending,
                      memo, metadata, created_at, updated_at, finalized_at, sent_at, paid_at,
                      voided_at, marked_uncollectible_at, overdue_at)
SELECT tenant_id, id, number, number_sort, customer_id, '{CURRENCY}', status, issue_date,
       due_date, subtotal, tax, total,
       CASE WHEN status = 'paid' THEN total ELSE 0 END,
       CASE WHEN pend THEN total ELSE 0 END,
       NULL, '{{}}'::jsonb, created_at, COALESCE(end_at, finalized_at, created_at),
       finalized_at, NULL,
       CASE WHEN status = 'paid' THEN end_at END,
       CASE WHEN status = 'void' THEN end_at END,
       CASE WHEN status = 'uncollectible' THEN end_at END,
       overdue_at
FROM t_inv ORDER BY created_at
"""

WRITE_ITEMS = f"""
INSERT INTO invoice_items (tenant_id, id, invoice_id, position, description, quantity,
                           unit_price, tax_rate, subtotal, tax, total)
SELECT v.tenant_id, {uuid7("v.created_at")}, v.id, x.pos, x.d, x.q * 10000, x.p * 10000,
       x.r, x.s, x.x, x.s + x.x
FROM t_inv v
CROSS JOIN LATERAL (VALUES (0, v.d1, v.q1, v.p1, v.r1, v.s1, v.x1),
                           (1, v.d2, v.q2, v.p2, v.r2, v.s2, v.x2),
                           (2, v.d3, v.q3, v.p3, v.r3, v.s3, v.x3)) AS x(pos, d, q, p, r, s, x)
ORDER BY v.created_at, x.pos
"""

# Paid invoices were paid by a payment the gateway confirmed (payment.succeeded); the
# pending ones wait for the webhook the benchmark sends. No outbox jobs: W4 plays the gateway.
WRITE_PAYMENTS = f"""
INSERT INTO payments (tenant_id, id, invoice_id, amount, currency, method, status,
                      failure_code, failure_message, gateway_reference, attempted_at,
                      succeeded_at, failed_at)
SELECT v.tenant_id, v.pay_id, v.id, v.total, '{CURRENCY}', v.pay_method,
       CASE WHEN v.pend THEN 'pending' ELSE 'succeeded' END, NULL, NULL,
       CASE WHEN NOT v.pend THEN {GATEWAY_REFERENCE} END,
       v.pay_at, CASE WHEN NOT v.pend THEN v.end_at END, NULL
FROM t_inv v WHERE v.pay_id IS NOT NULL ORDER BY v.pay_at
"""

WRITE_PAYMENT_ROUTES = """
INSERT INTO payment_routes (payment_id, tenant_id)
SELECT pay_id, tenant_id FROM t_inv WHERE pay_id IS NOT NULL ORDER BY pay_at
"""

# The hash of each finalized invoice's derived link (tenvoice.invoices.links), its HMAC-SHA256
# written out: $1 and $2 are the link subkey XORed with HMAC's inner and outer pads
# (bench.seed_loader.hmac_pads).
WRITE_HOSTED_LINKS = """
INSERT INTO hosted_invoice_links (tenant_id, invoice_id, token_hash, created_at)
SELECT tenant_id, id,
       encode(sha256(convert_to(rtrim(translate(encode(
           sha256($2::bytea || sha256($1::bytea || uuid_send(tenant_id) || uuid_send(id))),
           'base64'), '+/', '-_'), '='), 'UTF8')), 'hex'),
       finalized_at
FROM t_inv WHERE finalized_at IS NOT NULL ORDER BY finalized_at
"""

WRITE_COUNTERS = """
INSERT INTO invoice_number_counters (tenant_id, year, last_value)
SELECT tenant_id, extract(year FROM finalized_at AT TIME ZONE 'UTC')::int, count(*)
FROM t_inv WHERE finalized_at IS NOT NULL GROUP BY 1, 2
"""

READ_TENANTS = """
SELECT v.tenant_id,
       count(*) FILTER (WHERE v.status = 'open') AS open_invoices,
       count(*) AS invoices,
       array_agg(v.id::text) FILTER (WHERE v.sampled) AS sample,
       (SELECT c.id::text FROM t_cust c WHERE c.tenant_id = v.tenant_id AND c.k = 1)
           AS customer_id
FROM t_inv v GROUP BY v.tenant_id
"""

READ_PENDING = f"""
SELECT pay_id::text AS id, id::text AS invoice_id, tenant_id::text AS tenant_id,
       total AS amount, '{CURRENCY}' AS currency
FROM t_inv WHERE pend ORDER BY tenant_id, pay_at
"""

# The whale is planned whole (its numbers and sample need all of it) but written a slice per
# later batch of the same connection: see `bench.seed_loader.Loader`.
STASH_WHALE = """
WITH moved AS (
    DELETE FROM t_inv v USING t_ten t
    WHERE t.tenant_id = v.tenant_id AND t.n_open > 0
    RETURNING v.*
)
INSERT INTO t_whale SELECT * FROM moved
"""
# $1 slices, $2 this slice (-1: all that is left).
TAKE_WHALE_SLICE = """
WITH moved AS (DELETE FROM t_whale WHERE $2::int < 0 OR i % $1::int = $2::int RETURNING *)
INSERT INTO t_inv SELECT * FROM moved
"""
