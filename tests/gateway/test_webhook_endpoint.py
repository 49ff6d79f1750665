"""POST /api/webhooks/payments through the app, on both databases.

Payments are made with `tok_pending`, which the simulated gateway never answers, and the
webhooks are signed here with the reference library (`standardwebhooks`), not with our own
signer: what the endpoint accepts is then what any Standard Webhooks sender produces.
"""

import asyncio
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import orjson
import pytest
from sqlalchemy import select
from standardwebhooks.webhooks import Webhook

from tenvoice.config import Settings
from tenvoice.main import create_app
from tenvoice.platform.db import Database
from tenvoice.platform.inbox import InboxMessage
from tenvoice.platform.messages import EventHandlers
from tests.conftest import WEBHOOK_SECRET, TenantHandle, make_customer, make_invoice
from tests.payments.support import pay
from tests.problems import assert_problem

URL = "/api/webhooks/payments"
WRONG_SECRET = "whsec_dGhlIHdyb25nIGdhdGV3YXkgc2VjcmV0IQ=="
InboxRow = tuple[str, str, uuid.UUID | None, str, str, str | None]


@dataclass(frozen=True)
class Pending:
    tenant: TenantHandle
    invoice_id: str
    payment_id: str
    amount: str
    currency: str


@dataclass(frozen=True)
class State:
    """Everything a webhook could change, as the API and the inbox show it."""

    payment: dict[str, Any]
    invoice: dict[str, Any]
    timeline: list[dict[str, Any]]
    inbox: list[InboxRow]


async def pending_payment(
    client: httpx.AsyncClient, tenant: TenantHandle, amount: str | None = None
) -> Pending:
    customer = await make_customer(client, tenant)
    invoice = await make_invoice(client, tenant, customer["id"], finalize=True)
    response = await pay(
        client, tenant, invoice["id"], amount or invoice["total"], token="tok_pending"
    )
    assert response.status_code == 201, response.text
    payment = response.json()
    assert payment["status"] == "pending"
    return Pending(tenant, invoice["id"], payment["id"], payment["amount"], payment["currency"])


def event(pending: Pending, kind: str = "payment.succeeded", **data: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "paymentId": pending.payment_id,
        "gatewayReference": "gw_ch_" + pending.payment_id[-12:],
        "amount": pending.amount,
        "currency": pending.currency,
    }
    if kind == "payment.failed":
        fields |= {"failureCode": "card_declined", "failureMessage": "The card was declined."}
    return {"type": kind, "data": fields | data}


def signed(
    body: bytes,
    webhook_id: str,
    *,
    timestamp: int | None = None,
    secret: str = WEBHOOK_SECRET,
) -> dict[str, str]:
    stamp = int(time.time()) if timestamp is None else timestamp
    signature = Webhook(secret).sign(
        msg_id=webhook_id, timestamp=datetime.fromtimestamp(stamp, tz=UTC), data=body.decode()
    )
    return {
        "webhook-id": webhook_id,
        "webhook-timestamp": str(stamp),
        "webhook-signature": signature,
    }


def new_id() -> str:
    return f"msg_{uuid.uuid4().hex}"


async def deliver(
    client: httpx.AsyncClient,
    payload: dict[str, Any] | bytes,
    webhook_id: str | None = None,
    *,
    headers: dict[str, str] | None = None,
    **signing: Any,
) -> httpx.Response:
    body = payload if isinstance(payload, bytes) else orjson.dumps(payload)
    sent = signed(body, webhook_id or new_id(), **signing)
    return await client.post(
        URL, content=body, headers={"content-type": "application/json", **sent, **(headers or {})}
    )


async def inbox_rows(db: Database) -> list[InboxRow]:
    async with db.lookup() as connection:
        rows = await connection.execute(
            select(
                InboxMessage.source,
                InboxMessage.message_id,
                InboxMessage.tenant_id,
                InboxMessage.message_type,
                InboxMessage.outcome,
                InboxMessage.detail,
            ).order_by(InboxMessage.received_at, InboxMessage.message_id)
        )
        return [(r[0], r[1], r[2], r[3], r[4], r[5]) for r in rows]


async def get(client: httpx.AsyncClient, tenant: TenantHandle, path: str) -> Any:
    response = await client.get(path, headers=tenant.headers)
    assert response.status_code == 200, response.text
    return response.json()


async def state(client: httpx.AsyncClient, db: Database, pending: Pending) -> State:
    tenant = pending.tenant
    return State(
        payment=await get(client, tenant, f"/api/payments/{pending.payment_id}"),
        invoice=await get(client, tenant, f"/api/invoices/{pending.invoice_id}"),
        timeline=(await get(client, tenant, f"/api/invoices/{pending.invoice_id}/timeline"))[
            "data"
        ],
        inbox=await inbox_rows(db),
    )


def of_type(timeline: list[dict[str, Any]], event_type: str) -> list[dict[str, Any]]:
    return [entry for entry in timeline if entry["eventType"] == event_type]


def acked(response: httpx.Response, status: str) -> None:
    assert response.status_code == 200, response.text
    assert response.json() == {"status": status}


# Applied.


async def test_a_success_is_processed_and_pays_the_invoice(
    client: httpx.AsyncClient, db: Database, tenant_a: TenantHandle
) -> None:
    pending = await pending_payment(client, tenant_a)
    before = await state(client, db, pending)
    assert before.invoice["status"] == "open"
    assert before.invoice["amountPaid"] == "0.00"
    webhook_id = new_id()

    response = await deliver(client, event(pending), webhook_id)

    acked(response, "processed")
    after = await state(client, db, pending)
    assert after.payment["status"] == "succeeded"
    assert after.payment["gatewayReference"] == "gw_ch_" + pending.payment_id[-12:]
    assert after.payment["succeededAt"] is not None
    assert after.payment["failedAt"] is None
    assert after.invoice["amountPaid"] == "277.50"
    assert after.invoice["amountDue"] == "0.00"
    assert after.invoice["status"] == "paid"
    assert after.invoice["paidAt"] is not None
    assert len(of_type(after.timeline, "payment.succeeded")) == 1
    assert len(of_type(after.timeline, "invoice.paid")) == 1
    assert after.inbox == [
        ("gateway", webhook_id, uuid.UUID(tenant_a.id), "payment.succeeded", "processed", None)
    ]


async def test_a_partial_success_keeps_the_invoice_open(
    client: httpx.AsyncClient, db: Database, tenant_a: TenantHandle
) -> None:
    pending = await pending_payment(client, tenant_a, amount="100.00")
    acked(await deliver(client, event(pending)), "processed")
    after = await state(client, db, pending)
    assert after.payment["status"] == "succeeded"
    assert after.invoice["status"] == "open"
    assert after.invoice["amountPaid"] == "100.00"
    assert after.invoice["amountDue"] == "177.50"
    assert of_type(after.timeline, "invoice.paid") == []


async def test_a_failure_is_processed_and_releases_the_reserved_balance(
    client: httpx.AsyncClient, db: Database, tenant_a: TenantHandle
) -> None:
    pending = await pending_payment(client, tenant_a)
    # The pending payment holds the whole balance: no second attempt fits beside it.
    blocked = await pay(client, tenant_a, pending.invoice_id, "277.50", token="tok_pending")
    assert_problem(blocked, 409, "amount_exceeds_balance")

    acked(await deliver(client, event(pending, "payment.failed")), "processed")

    after = await state(client, db, pending)
    assert after.payment["status"] == "failed"
    assert after.payment["failureCode"] == "card_declined"
    assert after.payment["failureMessage"] == "The card was declined."
    assert after.payment["failedAt"] is not None
    assert after.invoice["status"] == "open"
    assert after.invoice["amountPaid"] == "0.00"
    assert len(of_type(after.timeline, "payment.failed")) == 1
    assert [row[4] for row in after.inbox] == ["processed"]
    retry = await pay(client, tenant_a, pending.invoice_id, "277.50", token="tok_pending")
    assert retry.status_code == 201, retry.text


async def test_webhook_changes_carry_the_gateway_as_actor(
    client: httpx.AsyncClient, db: Database, tenant_a: TenantHandle
) -> None:
    paid = await pending_payment(client, tenant_a)
    failed = await pending_payment(client, tenant_a)
    succeeded = await deliver(client, event(paid))
    acked(succeeded, "processed")
    declined = await deliver(client, event(failed, "payment.failed"))
    acked(declined, "processed")

    for pending, response, types in (
        (paid, succeeded, ("payment.succeeded", "invoice.paid")),
        (failed, declined, ("payment.failed",)),
    ):
        timeline = (await state(client, db, pending)).timeline
        for event_type in types:
            [entry] = of_type(timeline, event_type)
            assert entry["actor"] == {"type": "gateway", "id": None}, entry
            assert entry["requestId"] == response.headers["x-request-id"]
        [attempted] = of_type(timeline, "payment.attempted")
        assert attempted["actor"]["type"] == "api_key"


async def test_amount_as_a_json_number_is_processed(
    client: httpx.AsyncClient, db: Database, tenant_a: TenantHandle
) -> None:
    pending = await pending_payment(client, tenant_a)
    body = b'{"type":"payment.succeeded","data":{"paymentId":"%s","gatewayReference":"gw_1",'
    body += b'"amount":277.5,"currency":"USD"}}'
    acked(await deliver(client, body % pending.payment_id.encode()), "processed")
    after = await state(client, db, pending)
    assert after.payment["status"] == "succeeded"
    assert after.invoice["amountPaid"] == "277.50"


async def test_amount_in_another_notation_of_the_same_value_is_processed(
    client: httpx.AsyncClient, db: Database, tenant_a: TenantHandle
) -> None:
    pending = await pending_payment(client, tenant_a)
    acked(await deliver(client, event(pending, amount="277.5")), "processed")
    assert (await state(client, db, pending)).invoice["amountPaid"] == "277.50"


@pytest.mark.parametrize("content_type", ["text/plain", "application/octet-stream", None])
async def test_the_body_is_taken_whatever_content_type_is_declared(
    client: httpx.AsyncClient, db: Database, tenant_a: TenantHandle, content_type: str | None
) -> None:
    pending = await pending_payment(client, tenant_a)
    body = orjson.dumps(event(pending))
    headers = signed(body, new_id())
    if content_type is not None:
        headers["content-type"] = content_type
    response = await client.post(URL, content=body, headers=headers)
    acked(response, "processed")
    assert (await state(client, db, pending)).payment["status"] == "succeeded"


async def test_the_signature_is_over_the_raw_bytes_not_the_parsed_json(
    client: httpx.AsyncClient, db: Database, tenant_a: TenantHandle
) -> None:
    # Same JSON document, other spacing and key order: a verifier that re-serialised the
    # parsed body before checking would refuse the one signed as sent, or accept the other.
    pending = await pending_payment(client, tenant_a)
    sent = orjson.dumps(event(pending), option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS)
    compact = orjson.dumps(event(pending))
    assert orjson.loads(sent) == orjson.loads(compact)
    webhook_id = new_id()
    refused = await client.post(
        URL,
        content=compact,
        headers={**signed(sent, webhook_id), "content-type": "application/json"},
    )
    assert_problem(refused, 401, "invalid_signature")
    acked(await deliver(client, sent, webhook_id), "processed")


async def test_no_authorization_is_needed_and_one_sent_is_ignored(
    client: httpx.AsyncClient,
    db: Database,
    admin: dict[str, str],
    tenant_a: TenantHandle,
    tenant_b: TenantHandle,
) -> None:
    # Neither a bogus key, nor another tenant's, nor the admin's changes whose payment the
    # webhook settles, nor stands in for the signature.
    bogus = await pending_payment(client, tenant_a)
    others = await pending_payment(client, tenant_a)
    admins = await pending_payment(client, tenant_a)
    for pending, authorization in (
        (bogus, {"Authorization": "Bearer tv_sk_not_a_key"}),
        (others, tenant_b.headers),
        (admins, admin),
    ):
        forged = await deliver(client, event(pending), headers=authorization, secret=WRONG_SECRET)
        assert_problem(forged, 401, "invalid_signature")
        acked(await deliver(client, event(pending), headers=authorization), "processed")
        after = await state(client, db, pending)
        assert after.payment["status"] == "succeeded"
        [entry] = of_type(after.timeline, "payment.succeeded")
        assert entry["actor"]["type"] == "gateway"
    assert {row[2] for row in await inbox_rows(db)} == {uuid.UUID(tenant_a.id)}


async def test_an_idempotency_key_never_stands_in_for_the_signature(
    client: httpx.AsyncClient, db: Database, tenant_a: TenantHandle
) -> None:
    # With an API key and an Idempotency-Key the idempotency layer is in play; a forged
    # webhook reusing the key of a valid one must still be judged on its signature.
    pending = await pending_payment(client, tenant_a)
    extra = {**tenant_a.headers, "Idempotency-Key": "webhook-1"}
    acked(await deliver(client, event(pending), headers=extra), "processed")
    before = await state(client, db, pending)
    forged = await deliver(client, event(pending), headers=extra, secret=WRONG_SECRET)
    assert_problem(forged, 401, "invalid_signature")
    assert await state(client, db, pending) == before


# Redeliveries and replays.


async def test_the_same_webhook_id_again_is_a_duplicate_and_changes_nothing(
    client: httpx.AsyncClient, db: Database, tenant_a: TenantHandle
) -> None:
    pending = await pending_payment(client, tenant_a, amount="100.00")
    webhook_id = new_id()
    acked(await deliver(client, event(pending), webhook_id), "processed")
    first = await state(client, db, pending)

    # A redelivery: same id and body, signed afresh at a later second.
    redelivered = await deliver(client, event(pending), webhook_id, timestamp=int(time.time()) + 2)

    acked(redelivered, "duplicate")
    again = await state(client, db, pending)
    assert again == first
    assert again.invoice["amountPaid"] == "100.00"
    assert len(of_type(again.timeline, "payment.succeeded")) == 1
    assert len(again.inbox) == 1


async def test_a_duplicate_is_recognised_by_its_id_alone(
    client: httpx.AsyncClient, db: Database, tenant_a: TenantHandle
) -> None:
    # A redelivery is the same message: whatever its body now says, it is not looked at.
    pending = await pending_payment(client, tenant_a)
    webhook_id = new_id()
    acked(await deliver(client, event(pending), webhook_id), "processed")
    first = await state(client, db, pending)
    acked(await deliver(client, event(pending, "payment.failed"), webhook_id), "duplicate")
    assert await state(client, db, pending) == first


async def test_a_replayed_request_is_a_duplicate(
    client: httpx.AsyncClient, db: Database, tenant_a: TenantHandle
) -> None:
    pending = await pending_payment(client, tenant_a, amount="50.00")
    body = orjson.dumps(event(pending))
    captured = {**signed(body, new_id()), "content-type": "application/json"}
    acked(await client.post(URL, content=body, headers=captured), "processed")
    first = await state(client, db, pending)

    replayed = await client.post(URL, content=body, headers=captured)

    acked(replayed, "duplicate")
    assert await state(client, db, pending) == first


async def test_an_ignored_webhook_redelivered_stays_a_duplicate(
    client: httpx.AsyncClient, db: Database, tenant_a: TenantHandle
) -> None:
    pending = await pending_payment(client, tenant_a)
    webhook_id = new_id()
    acked(await deliver(client, event(pending, "payment.refunded"), webhook_id), "ignored")
    first = await state(client, db, pending)
    acked(await deliver(client, event(pending, "payment.refunded"), webhook_id), "duplicate")
    assert await state(client, db, pending) == first


# Ignored and recorded.


async def test_a_failure_after_success_is_ignored_and_recorded(
    client: httpx.AsyncClient, db: Database, tenant_a: TenantHandle
) -> None:
    pending = await pending_payment(client, tenant_a)
    acked(await deliver(client, event(pending)), "processed")
    settled = await state(client, db, pending)
    late = new_id()

    response = await deliver(client, event(pending, "payment.failed"), late)

    acked(response, "ignored")
    after = await state(client, db, pending)
    assert after.payment == settled.payment
    assert after.invoice == settled.invoice
    assert after.timeline == settled.timeline
    assert after.inbox[:-1] == settled.inbox
    source, message_id, tenant_id, message_type, outcome, detail = after.inbox[-1]
    assert (source, message_id, tenant_id, message_type, outcome) == (
        "gateway",
        late,
        uuid.UUID(tenant_a.id),
        "payment.failed",
        "ignored",
    )
    assert detail
    assert "succeeded" in detail


async def test_a_second_success_under_another_id_is_ignored(
    client: httpx.AsyncClient, db: Database, tenant_a: TenantHandle
) -> None:
    pending = await pending_payment(client, tenant_a, amount="100.00")
    acked(await deliver(client, event(pending)), "processed")
    settled = await state(client, db, pending)
    acked(await deliver(client, event(pending)), "ignored")
    after = await state(client, db, pending)
    assert after.invoice["amountPaid"] == "100.00"
    assert (after.payment, after.invoice, after.timeline) == (
        settled.payment,
        settled.invoice,
        settled.timeline,
    )
    assert [row[4] for row in after.inbox] == ["processed", "ignored"]


@pytest.mark.parametrize(
    ("change", "mentioned"),
    [
        ({"amount": "277.49"}, "277.49"),
        ({"amount": "1000.00"}, "1000.00"),
        ({"amount": "277.501"}, "277.501"),
        ({"amount": 277.51}, "277.51"),
        ({"currency": "EUR"}, "EUR"),
        ({"currency": "usd"}, "usd"),
    ],
)
async def test_an_amount_or_currency_not_the_payments_is_ignored_and_recorded(
    client: httpx.AsyncClient,
    db: Database,
    tenant_a: TenantHandle,
    change: dict[str, Any],
    mentioned: str,
) -> None:
    pending = await pending_payment(client, tenant_a)
    before = await state(client, db, pending)
    webhook_id = new_id()

    acked(await deliver(client, event(pending, **change), webhook_id), "ignored")

    after = await state(client, db, pending)
    assert (after.payment, after.invoice, after.timeline) == (
        before.payment,
        before.invoice,
        before.timeline,
    )
    assert after.payment["status"] == "pending"
    [(_, message_id, tenant_id, _, outcome, detail)] = after.inbox
    assert (message_id, tenant_id, outcome) == (webhook_id, uuid.UUID(tenant_a.id), "ignored")
    assert detail
    assert mentioned in detail
    # The payment is still open to its true answer.
    acked(await deliver(client, event(pending)), "processed")


@pytest.mark.parametrize("kind", ["payment.refunded", "invoice.paid", "PAYMENT.SUCCEEDED"])
async def test_an_unknown_event_type_is_ignored_and_recorded(
    client: httpx.AsyncClient, db: Database, tenant_a: TenantHandle, kind: str
) -> None:
    pending = await pending_payment(client, tenant_a)
    before = await state(client, db, pending)
    webhook_id = new_id()
    acked(await deliver(client, event(pending, kind), webhook_id), "ignored")
    after = await state(client, db, pending)
    assert (after.payment, after.invoice, after.timeline) == (
        before.payment,
        before.invoice,
        before.timeline,
    )
    [(_, message_id, _, message_type, outcome, detail)] = after.inbox
    assert (message_id, message_type, outcome) == (webhook_id, kind, "ignored")
    assert detail
    assert kind in detail


async def test_a_success_without_a_gateway_reference_is_ignored_and_recorded(
    client: httpx.AsyncClient, db: Database, tenant_a: TenantHandle
) -> None:
    pending = await pending_payment(client, tenant_a)
    payload = event(pending)
    del payload["data"]["gatewayReference"]
    acked(await deliver(client, payload), "ignored")
    after = await state(client, db, pending)
    assert after.payment["status"] == "pending"
    [row] = after.inbox
    assert row[4] == "ignored"
    assert row[5]


@pytest.mark.parametrize(
    "amount",
    [
        '"NaN"',
        '"Infinity"',
        '"1e3"',
        '"2.775e2"',
        '""',
        '"-277.50"',
        '"0"',
        '"277.50.1"',
        "1e300",
        "1000000000000000000000000000000",
        "-277.5",
    ],
)
async def test_an_amount_that_is_no_plain_match_is_ignored_not_an_error(
    client: httpx.AsyncClient, db: Database, tenant_a: TenantHandle, amount: str
) -> None:
    # Written as raw JSON: numbers past 64 bits or doubles are what a sender may send.
    pending = await pending_payment(client, tenant_a)
    body = orjson.dumps(event(pending, amount="AMOUNT")).replace(b'"AMOUNT"', amount.encode())
    acked(await deliver(client, body), "ignored")
    after = await state(client, db, pending)
    assert after.payment["status"] == "pending"
    assert [row[4] for row in after.inbox] == ["ignored"]


async def test_a_failure_without_a_code_is_recorded_with_a_generic_one(
    client: httpx.AsyncClient, db: Database, tenant_a: TenantHandle
) -> None:
    pending = await pending_payment(client, tenant_a)
    payload = event(pending, "payment.failed")
    del payload["data"]["failureCode"], payload["data"]["failureMessage"]
    acked(await deliver(client, payload), "processed")
    payment = (await state(client, db, pending)).payment
    assert payment["status"] == "failed"
    assert payment["failureCode"]
    assert payment["failureMessage"]


async def test_a_success_settles_an_invoice_marked_uncollectible_meanwhile(
    client: httpx.AsyncClient, db: Database, tenant_a: TenantHandle
) -> None:
    # uncollectible -> paid is a transition API.md allows: the money the gateway took lands.
    pending = await pending_payment(client, tenant_a)
    marked = await client.post(
        f"/api/invoices/{pending.invoice_id}/mark-uncollectible", headers=tenant_a.headers
    )
    assert marked.status_code == 200, marked.text
    acked(await deliver(client, event(pending)), "processed")
    after = await state(client, db, pending)
    assert after.invoice["status"] == "paid"
    assert after.invoice["amountPaid"] == "277.50"
    assert after.payment["status"] == "succeeded"


async def test_fields_the_gateway_adds_later_are_tolerated(
    client: httpx.AsyncClient, db: Database, tenant_a: TenantHandle
) -> None:
    pending = await pending_payment(client, tenant_a)
    payload = event(pending, riskScore=12) | {"livemode": False}
    acked(await deliver(client, payload), "processed")


# Refused: nothing changes.


@pytest.mark.parametrize(
    "attack",
    [
        "forged signature",
        "wrong secret",
        "no webhook-id",
        "no webhook-timestamp",
        "no webhook-signature",
        "stale",
        "future",
        "v2 signature",
        "timestamp not a number",
        "signed for another id",
        "signed for another body",
    ],
)
async def test_a_bad_signature_is_refused_and_changes_nothing(
    client: httpx.AsyncClient, db: Database, tenant_a: TenantHandle, attack: str
) -> None:
    pending = await pending_payment(client, tenant_a)
    before = await state(client, db, pending)
    body = orjson.dumps(event(pending))
    webhook_id = new_id()
    now = int(time.time())
    headers = signed(body, webhook_id)
    if attack == "forged signature":
        headers["webhook-signature"] = "v1," + "A" * 43 + "="
    elif attack == "wrong secret":
        headers = signed(body, webhook_id, secret=WRONG_SECRET)
    elif attack.startswith("no "):
        del headers[attack.removeprefix("no ")]
    elif attack == "stale":
        headers = signed(body, webhook_id, timestamp=now - 6 * 60)
    elif attack == "future":
        headers = signed(body, webhook_id, timestamp=now + 6 * 60)
    elif attack == "v2 signature":
        headers["webhook-signature"] = headers["webhook-signature"].replace("v1,", "v2,")
    elif attack == "timestamp not a number":
        headers["webhook-timestamp"] = "yesterday"
    elif attack == "signed for another id":
        headers = {**signed(body, new_id()), "webhook-id": webhook_id}
    elif attack == "signed for another body":
        headers = signed(orjson.dumps(event(pending, amount="1.00")), webhook_id)

    response = await client.post(
        URL, content=body, headers={**headers, "content-type": "application/json"}
    )

    assert_problem(response, 401, "invalid_signature")
    after = await state(client, db, pending)
    assert after == before
    assert after.inbox == []
    assert after.payment["status"] == "pending"
    # The refusal did not use up the id: the genuine message is applied when it comes.
    acked(await deliver(client, body, webhook_id), "processed")


async def test_a_body_that_is_not_json_is_malformed(
    client: httpx.AsyncClient, db: Database, tenant_a: TenantHandle
) -> None:
    pending = await pending_payment(client, tenant_a)
    before = await state(client, db, pending)
    response = await deliver(
        client, b"type=payment.succeeded&paymentId=" + pending.payment_id.encode()
    )
    assert_problem(response, 400, "malformed_json")
    assert await state(client, db, pending) == before


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"type": "payment.succeeded", "data": {"amount": "1.00", "currency": "USD"}}, "paymentId"),
        ({"type": "payment.succeeded"}, "data"),
        ({"data": {"paymentId": str(uuid.uuid4()), "amount": "1", "currency": "USD"}}, "type"),
        (
            {
                "type": "payment.succeeded",
                "data": {"paymentId": "not-a-uuid", "amount": "1", "currency": "USD"},
            },
            "paymentId",
        ),
        (
            {
                "type": "payment.succeeded",
                "data": {"paymentId": str(uuid.uuid4()), "amount": True, "currency": "USD"},
            },
            "amount",
        ),
        (
            {
                "type": "",
                "data": {"paymentId": str(uuid.uuid4()), "amount": "1", "currency": "USD"},
            },
            "type",
        ),
        ([1, 2, 3], None),
    ],
)
async def test_a_json_body_without_what_is_needed_is_invalid(
    client: httpx.AsyncClient,
    db: Database,
    tenant_a: TenantHandle,
    payload: Any,
    field: str | None,
) -> None:
    pending = await pending_payment(client, tenant_a)
    before = await state(client, db, pending)
    body = assert_problem(await deliver(client, orjson.dumps(payload)), 422, "validation_failed")
    if field is not None:
        assert any(error["field"].endswith(field) for error in body["errors"]), body
    assert await state(client, db, pending) == before


async def test_an_unknown_payment_is_not_found_and_not_entered(
    client: httpx.AsyncClient, db: Database, tenant_a: TenantHandle
) -> None:
    pending = await pending_payment(client, tenant_a)
    before = await state(client, db, pending)
    webhook_id = new_id()
    missing = event(pending, paymentId=str(uuid.uuid4()))
    assert_problem(await deliver(client, missing, webhook_id), 404, "payment_not_found")
    assert await state(client, db, pending) == before
    assert before.inbox == []
    # Not entered, so the id is not spent: the sender's corrected retry goes through.
    acked(await deliver(client, event(pending), webhook_id), "processed")


async def test_a_webhook_id_over_255_characters_is_refused(
    client: httpx.AsyncClient, db: Database, tenant_a: TenantHandle
) -> None:
    pending = await pending_payment(client, tenant_a)
    before = await state(client, db, pending)
    response = await deliver(client, event(pending), "m" * 256)
    assert_problem(response, 422, "validation_failed")
    assert await state(client, db, pending) == before
    acked(await deliver(client, event(pending), "m" * 255), "processed")


# Concurrency.


async def test_eight_concurrent_deliveries_of_one_webhook_apply_it_once(
    client: httpx.AsyncClient, db: Database, tenant_a: TenantHandle
) -> None:
    pending = await pending_payment(client, tenant_a, amount="100.00")
    body = orjson.dumps(event(pending))
    headers = {**signed(body, new_id()), "content-type": "application/json"}

    responses = await asyncio.gather(
        *(client.post(URL, content=body, headers=headers) for _ in range(8))
    )

    assert [r.status_code for r in responses] == [200] * 8, [r.text for r in responses]
    outcomes = sorted(r.json()["status"] for r in responses)
    assert outcomes == ["duplicate"] * 7 + ["processed"]
    after = await state(client, db, pending)
    assert after.invoice["amountPaid"] == "100.00"
    assert len(of_type(after.timeline, "payment.succeeded")) == 1
    assert [row[4] for row in after.inbox] == ["processed"]


async def test_eight_concurrent_successes_under_different_ids_apply_once(
    client: httpx.AsyncClient, db: Database, tenant_a: TenantHandle
) -> None:
    pending = await pending_payment(client, tenant_a, amount="100.00")
    body = orjson.dumps(event(pending))
    ids = [new_id() for _ in range(8)]

    responses = await asyncio.gather(
        *(
            client.post(
                URL, content=body, headers={**signed(body, i), "content-type": "application/json"}
            )
            for i in ids
        )
    )

    assert [r.status_code for r in responses] == [200] * 8, [r.text for r in responses]
    outcomes = {i: r.json()["status"] for i, r in zip(ids, responses, strict=True)}
    assert sorted(outcomes.values()) == ["ignored"] * 7 + ["processed"]
    after = await state(client, db, pending)
    assert after.invoice["amountPaid"] == "100.00"
    assert after.invoice["amountDue"] == "177.50"
    assert len(of_type(after.timeline, "payment.succeeded")) == 1
    assert {row[1]: row[4] for row in after.inbox} == outcomes
    assert all(row[5] for row in after.inbox if row[4] == "ignored")


async def test_concurrent_success_and_failure_settle_the_payment_one_way(
    client: httpx.AsyncClient, db: Database, tenant_a: TenantHandle
) -> None:
    pending = await pending_payment(client, tenant_a)
    kinds = ["payment.succeeded", "payment.failed"] * 4
    responses = await asyncio.gather(*(deliver(client, event(pending, kind)) for kind in kinds))
    assert [r.status_code for r in responses] == [200] * 8, [r.text for r in responses]
    processed = [
        k for k, r in zip(kinds, responses, strict=True) if r.json()["status"] == "processed"
    ]
    assert len(processed) == 1
    after = await state(client, db, pending)
    won = processed[0]
    assert after.payment["status"] == ("succeeded" if won == "payment.succeeded" else "failed")
    assert after.invoice["amountPaid"] == ("277.50" if won == "payment.succeeded" else "0.00")
    settled = of_type(after.timeline, "payment.succeeded") + of_type(
        after.timeline, "payment.failed"
    )
    assert [entry["eventType"] for entry in settled] == [won]


# Tenancy.


async def test_a_webhook_changes_only_its_own_tenants_payment(
    client: httpx.AsyncClient, db: Database, tenant_a: TenantHandle, tenant_b: TenantHandle
) -> None:
    mine = await pending_payment(client, tenant_a)
    theirs = await pending_payment(client, tenant_b)
    assert theirs.currency == "EUR"
    theirs_before = await state(client, db, theirs)
    invoices_before = await get(client, tenant_b, "/api/invoices")
    payments_before = await get(client, tenant_b, "/api/payments")
    webhook_id = new_id()

    acked(await deliver(client, event(mine), webhook_id), "processed")
    # The other tenant's payment named with the first webhook's id: ids are the gateway's,
    # unique across tenants, so this is a redelivery, not a message for tenant B.
    acked(await deliver(client, event(theirs), webhook_id), "duplicate")

    assert (await state(client, db, mine)).payment["status"] == "succeeded"
    theirs_after = await state(client, db, theirs)
    assert (theirs_after.payment, theirs_after.invoice, theirs_after.timeline) == (
        theirs_before.payment,
        theirs_before.invoice,
        theirs_before.timeline,
    )
    assert await get(client, tenant_b, "/api/invoices") == invoices_before
    assert await get(client, tenant_b, "/api/payments") == payments_before
    assert [(row[1], row[2]) for row in await inbox_rows(db)] == [
        (webhook_id, uuid.UUID(tenant_a.id))
    ]
    # Tenant B still cannot see tenant A's payment, webhook or not.
    hidden = await client.get(f"/api/payments/{mine.payment_id}", headers=tenant_b.headers)
    assert_problem(hidden, 404, "payment_not_found")


async def test_each_tenants_webhook_lands_in_its_own_tenant(
    client: httpx.AsyncClient, db: Database, tenant_a: TenantHandle, tenant_b: TenantHandle
) -> None:
    mine = await pending_payment(client, tenant_a)
    theirs = await pending_payment(client, tenant_b)
    mine_id, theirs_id = new_id(), new_id()
    acked(await deliver(client, event(theirs, "payment.failed"), theirs_id), "processed")
    acked(await deliver(client, event(mine), mine_id), "processed")
    assert (await state(client, db, mine)).payment["status"] == "succeeded"
    theirs_after = await state(client, db, theirs)
    assert theirs_after.payment["status"] == "failed"
    assert theirs_after.invoice["amountPaid"] == "0.00"
    tenants = {row[1]: row[2] for row in await inbox_rows(db)}
    assert tenants == {mine_id: uuid.UUID(tenant_a.id), theirs_id: uuid.UUID(tenant_b.id)}


@pytest.mark.backend("postgresql")  # on SQLite a secret is always generated beside the file
async def test_without_a_configured_secret_webhooks_are_refused_as_unavailable(
    client: httpx.AsyncClient,
    db: Database,
    tenant_a: TenantHandle,
    settings: Settings,
    event_handlers: EventHandlers,
) -> None:
    pending = await pending_payment(client, tenant_a)
    unconfigured = create_app(
        settings.model_copy(update={"gateway_webhook_secret": None}),
        db=db,
        event_handlers=event_handlers,
    )
    transport = httpx.ASGITransport(app=unconfigured)
    async with httpx.AsyncClient(transport=transport, base_url="http://tenvoice.test") as other:
        response = await deliver(other, event(pending))
    # Our configuration is missing, not the sender's fault: the gateway is to retry later.
    assert_problem(response, 503, "service_unavailable")
    assert await inbox_rows(db) == []
