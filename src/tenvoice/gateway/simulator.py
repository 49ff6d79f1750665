"""The simulated payment gateway: it takes a charge, decides it, and answers by webhook.

It behaves as a real gateway does from where this service stands: the charge (or refund)
request goes out through the outbox, the answer comes back later as a signed HTTP POST to the
callback URL, and nothing else changes the payment. The payment token decides the outcome
(API.md), of the charge and of its later refunds.
A delivery that fails is retried by the worker with the same webhook id, so the receiver
can tell a redelivery from a new message.
"""

import asyncio
import hashlib
import time
from dataclasses import dataclass

import orjson

from tenvoice.gateway.signing import sign
from tenvoice.platform.outbox import Job
from tenvoice.platform.worker import JobContext

CHARGE = "gateway.charge"
REFUND = "gateway.refund"
DEFAULT_TOKEN = "tok_success"  # noqa: S105 (a test token, no secret)
# The token of a charge the gateway never answers, for tests that send their own webhooks.
SILENT_TOKEN = "tok_pending"  # noqa: S105
# A charge that succeeds and whose refunds all fail.
REFUNDS_FAIL_TOKEN = "tok_refund_fails"  # noqa: S105


@dataclass(frozen=True, slots=True)
class Outcome:
    succeeded: bool
    failure_code: str | None = None
    failure_message: str | None = None


OUTCOMES = {
    "tok_success": Outcome(True),
    REFUNDS_FAIL_TOKEN: Outcome(True),
    "tok_declined": Outcome(False, "card_declined", "The card was declined."),
    "tok_insufficient_funds": Outcome(
        False, "insufficient_funds", "The account has insufficient funds."
    ),
}
UNKNOWN_TOKEN = Outcome(False, "invalid_token", "The payment token is not recognised.")


class DeliveryFailed(RuntimeError):
    """The callback did not take the webhook; the worker retries it."""


_CHARGE_PREFIX = "sim_ch_"
# The simulated gateway keeps no records: what a real one would look up about a charge when
# asked to refund it (that its refunds are to fail) is written into the charge's reference.
_REFUNDS_FAIL_PREFIX = "sim_chrf_"


def reference(payment_id: str, token: str = DEFAULT_TOKEN) -> str:
    """The gateway's own id for the charge: stable, so every redelivery carries the same."""
    prefix = _REFUNDS_FAIL_PREFIX if token == REFUNDS_FAIL_TOKEN else _CHARGE_PREFIX
    return prefix + _digest(payment_id)


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()[:24]


def webhook_body(payload: dict[str, str]) -> bytes:
    outcome = OUTCOMES.get(payload["paymentToken"], UNKNOWN_TOKEN)
    data: dict[str, str] = {
        "paymentId": payload["paymentId"],
        "gatewayReference": reference(payload["paymentId"], payload["paymentToken"]),
        "amount": payload["amount"],
        "currency": payload["currency"],
    }
    if not outcome.succeeded:
        data["failureCode"] = outcome.failure_code or "payment_failed"
        data["failureMessage"] = outcome.failure_message or "The payment failed."
    kind = "payment.succeeded" if outcome.succeeded else "payment.failed"
    return orjson.dumps({"type": kind, "data": data})


def refund_body(payload: dict[str, str]) -> bytes:
    data: dict[str, str] = {
        "refundId": payload["refundId"],
        "gatewayReference": "sim_re_" + _digest(payload["refundId"]),
        "amount": payload["amount"],
        "currency": payload["currency"],
    }
    fails = payload["chargeReference"].startswith(_REFUNDS_FAIL_PREFIX)
    if fails:
        data["failureCode"] = "refund_failed"
    kind = "refund.failed" if fails else "refund.succeeded"
    return orjson.dumps({"type": kind, "data": data})


async def charge(job: Job, context: JobContext) -> None:
    """Run one charge: decide it, then deliver the signed webhook to the callback."""
    if job.payload["paymentToken"] == SILENT_TOKEN:
        return
    await _answer(job, context, webhook_body(job.payload))


async def refund(job: Job, context: JobContext) -> None:
    """Run one refund of an earlier charge, answered the way charges are."""
    await _answer(job, context, refund_body(job.payload))


async def _answer(job: Job, context: JobContext, body: bytes) -> None:
    settings = context.settings
    if job.attempt == 1 and settings.gateway_latency_ms:
        await asyncio.sleep(settings.gateway_latency_ms / 1000)
    secret = settings.gateway_webhook_secret
    if not secret:
        raise DeliveryFailed("TENVOICE_GATEWAY_WEBHOOK_SECRET is not set")
    # The id is the job's: the same on every retry of this delivery, unique otherwise.
    headers = sign(secret, f"msg_{job.id.hex}", int(time.time()), body)
    response = await context.http.post(
        callback_url(settings.gateway_callback_url),
        content=body,
        headers={**headers, "content-type": "application/json"},
    )
    if response.status_code >= 300:
        raise DeliveryFailed(f"the callback answered {response.status_code}: {response.text[:200]}")


def callback_url(configured: str | None) -> str:
    return configured or "http://127.0.0.1:8000/api/webhooks/payments"
