"""The seeder's timeline rows: the events the app would have recorded for each seeded
customer, invoice and payment, written by one statement per batch in the order they happened.
"""

from dataclasses import dataclass

from bench.seed_sql import CURRENCY, GATEWAY_REFERENCE, money, request_id, uuid7


@dataclass(frozen=True, slots=True)
class _Event:
    """One kind of timeline row, as `record_on_timeline` writes it for a domain event.

    `data` is the event's fields as `tenvoice.platform.messages.event_data` renders them
    (camelCase, ids and dates as strings, money as wire strings). Expressions read `v`, a
    row of t_inv (or of t_cust for customers), filtered by `rows`.
    """

    kind: str
    at: str
    data: str
    request: str = request_id()
    actor: str = "'api_key'"
    actor_id: str = "v.key_id"
    entity_id: str = "v.id"
    rows: str = "t_inv v"

    @property
    def entity(self) -> str:
        return self.kind.split(".")[0]

    def select(self) -> str:
        return (
            f"SELECT v.tenant_id, '{self.kind}' AS event_type, '{self.entity}' AS entity_type,"
            f" {self.entity_id} AS entity_id, v.id AS stream_id, {self.at} AS at,"
            f" {self.request} AS req, {self.actor} AS actor_type, {self.actor_id} AS actor_id,"
            f" {self.data} AS data FROM {self.rows}"
        )


_MS = "interval '1 millisecond'"
_TOTAL = money("v.total")
EVENTS = (
    _Event(
        "customer.created",
        at=f"v.created_at + {_MS}",
        data="jsonb_build_object('customerId', v.id, 'name', v.name, 'email', v.email)",
        rows="t_cust v",
    ),
    _Event(
        "invoice.created",
        at=f"v.created_at + {_MS}",
        data="jsonb_build_object('invoiceId', v.id, 'customerId', v.customer_id,"
        f" 'currency', '{CURRENCY}', 'total', {_TOTAL}, 'itemCount', 3)",
    ),
    _Event(
        "invoice.finalized",
        at=f"v.finalized_at + {_MS}",
        data=f"jsonb_build_object('invoiceId', v.id, 'number', v.number, 'total', {_TOTAL},"
        f" 'amountDue', {_TOTAL}, 'dueDate', v.due_date::text)",
        rows="t_inv v WHERE v.finalized_at IS NOT NULL",
    ),
    # The worker's overdue check (an outbox job due the day after the due date).
    _Event(
        "invoice.overdue",
        at="v.overdue_at",
        data=f"jsonb_build_object('invoiceId', v.id, 'number', v.number,"
        f" 'amountDue', {_TOTAL}, 'dueDate', v.due_date::text)",
        request="NULL",
        actor="'system'",
        actor_id="'worker'",
        rows="t_inv v WHERE v.overdue_at IS NOT NULL",
    ),
    # Payments: stream = their invoice (v.id), entity = the payment.
    _Event(
        "payment.attempted",
        at=f"v.pay_at + {_MS}",
        data=f"jsonb_build_object('paymentId', v.pay_id, 'invoiceId', v.id, 'amount', {_TOTAL},"
        f" 'currency', '{CURRENCY}', 'method', v.pay_method)",
        entity_id="v.pay_id",
        rows="t_inv v WHERE v.pay_id IS NOT NULL",
    ),
    # The gateway's webhook: the payment succeeds, then the invoice is paid (one request).
    _Event(
        "payment.succeeded",
        at=f"v.end_at + {_MS}",
        data=f"jsonb_build_object('paymentId', v.pay_id, 'invoiceId', v.id, 'amount', {_TOTAL},"
        f" 'currency', '{CURRENCY}', 'gatewayReference', {GATEWAY_REFERENCE})",
        request="v.req_end",
        actor="'gateway'",
        actor_id="NULL",
        entity_id="v.pay_id",
        rows="t_inv v WHERE v.status = 'paid'",
    ),
    _Event(
        "invoice.paid",
        at=f"v.end_at + 2 * {_MS}",
        data=f"jsonb_build_object('invoiceId', v.id, 'number', v.number, 'amountPaid', {_TOTAL})",
        request="v.req_end",
        actor="'gateway'",
        actor_id="NULL",
        rows="t_inv v WHERE v.status = 'paid'",
    ),
    _Event(
        "invoice.voided",
        at=f"v.end_at + {_MS}",
        data="jsonb_build_object('invoiceId', v.id, 'number', v.number, 'previousStatus', 'open')",
        request="v.req_end",
        rows="t_inv v WHERE v.status = 'void'",
    ),
    _Event(
        "invoice.marked_uncollectible",
        at=f"v.end_at + {_MS}",
        data=f"jsonb_build_object('invoiceId', v.id, 'number', v.number, 'amountDue', {_TOTAL})",
        request="v.req_end",
        rows="t_inv v WHERE v.status = 'uncollectible'",
    ),
)

# Every event of the batch in one statement, in the order they happened.
_EVENT_ROWS = "\n    UNION ALL ".join(event.select() for event in EVENTS)
WRITE_TIMELINE = f"""
INSERT INTO events (tenant_id, id, event_type, entity_type, entity_id, stream_id,
                             occurred_at, request_id, actor_type, actor_id, data)
SELECT e.tenant_id, {uuid7("e.at")}, e.event_type, e.entity_type, e.entity_id, e.stream_id,
       e.at, e.req, e.actor_type, e.actor_id, e.data
FROM (
    {_EVENT_ROWS}
) AS e
ORDER BY e.at
"""
