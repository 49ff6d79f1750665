"""After any mix of payments, credit notes, refunds, voids and adjustments, the money adds up:
for every invoice amountDue = total - appliedBalance - creditedAmount - amountPaid >= 0, no
payment is refunded past what it took, and every customer's ledger sums to its balance.

Hypothesis draws the mix; each step goes through the HTTP API (the gateway's answers as
signed webhooks), and a step the API refuses must be refused with a 4xx problem, never 500.
"""

import random
from collections import defaultdict
from decimal import Decimal
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from tests.conftest import TenantHandle, get_ok, make_customer, make_invoice, make_tenant
from tests.gateway.test_webhook_endpoint import deliver
from tests.payments.support import pay

OPS = (
    "invoice",
    "pay",
    "decline",
    "credit_note",
    "refund",
    "refund_succeeds",
    "refund_fails",
    "void_note",
    "void_invoice",
    "adjust",
)
ITEMS = [
    {"description": "Consulting", "quantity": "3", "unitPrice": "33.33", "taxRate": "11"},
    {"description": "Support", "quantity": "1", "unitPrice": "19.99", "taxRate": "7.5"},
]


def cents(text: str) -> int:
    return int(Decimal(text) * 100)


def money(minor: int) -> str:
    return f"{Decimal(minor) / 100:.2f}"


class Mix:
    """One tenant's world, driven step by step through the API."""

    def __init__(self, client: httpx.AsyncClient, tenant: TenantHandle, rng: random.Random):
        self.client, self.tenant, self.rng = client, tenant, rng
        self.customers: list[str] = []
        self.invoices: list[str] = []
        self.pending_refunds: list[str] = []

    async def get(self, path: str) -> dict[str, Any]:
        return await get_ok(self.client, self.tenant, path)

    async def post(self, path: str, body: Any = None) -> httpx.Response:
        response = await self.client.post(path, json=body, headers=self.tenant.headers)
        assert response.status_code < 500, response.text
        return response

    def pick(self, options: list[str]) -> str | None:
        return self.rng.choice(options) if options else None

    async def step(self, op: str) -> None:
        if op == "invoice" or not self.invoices:
            await self.new_invoice()
            return
        invoice = await self.get(f"/api/invoices/{self.pick(self.invoices)}")
        await getattr(self, op)(invoice)

    async def new_invoice(self) -> None:
        if len(self.customers) < 2:
            self.customers.append((await make_customer(self.client, self.tenant))["id"])
        customer = self.pick(self.customers)
        items = self.rng.sample(ITEMS, self.rng.randint(1, 2))
        assert customer is not None
        invoice = await make_invoice(self.client, self.tenant, customer, items=items, finalize=True)
        self.invoices.append(invoice["id"])

    async def pay(self, invoice: dict[str, Any], succeed: bool = True) -> None:
        owed = cents(invoice["amountDue"])
        if invoice["status"] not in ("open", "uncollectible") or owed == 0:
            return
        amount = money(self.rng.randint(1, owed))
        response = await pay(self.client, self.tenant, invoice["id"], amount, token="tok_pending")
        if response.status_code != 201:
            return
        payment = response.json()
        kind = "payment.succeeded" if succeed else "payment.failed"
        data = {"paymentId": payment["id"], "amount": amount, "currency": "USD"}
        data |= {"gatewayReference": "ch_" + payment["id"][-12:]} if succeed else {}
        await self.webhook(kind, data)

    async def decline(self, invoice: dict[str, Any]) -> None:
        await self.pay(invoice, succeed=False)

    async def webhook(self, kind: str, data: dict[str, Any]) -> None:
        response = await deliver(self.client, {"type": kind, "data": data})
        assert response.status_code == 200, response.text

    async def credit_note(self, invoice: dict[str, Any]) -> None:
        lines: list[dict[str, Any]] = []
        for item in invoice["items"]:
            how = self.rng.choice(["skip", "quantity", "amount"])
            if how == "quantity":
                lines.append({"invoiceItemId": item["id"], "quantity": "1"})
            elif how == "amount":
                most = cents(item["subtotal"])
                lines.append(
                    {"invoiceItemId": item["id"], "amount": money(self.rng.randint(1, most))}
                )
        if not lines:
            lines = [{"description": "Goodwill", "amount": money(self.rng.randint(1, 3000))}]
        body = {"invoiceId": invoice["id"], "lines": lines}
        preview = await self.post("/api/credit-notes/preview", body)
        if preview.status_code != 200:
            return
        post = cents(preview.json()["total"]) - cents(preview.json()["prePaymentAmount"])
        refund = self.rng.randint(0, post)
        credit = self.rng.randint(0, post - refund)
        body |= {
            "refundAmount": money(refund),
            "creditAmount": money(credit),
            "outOfBandAmount": money(post - refund - credit),
        }
        response = await self.post("/api/credit-notes", body)
        if response.status_code == 201:
            event("issued a credit note")
            self.pending_refunds += response.json()["refundIds"]

    async def refund(self, invoice: dict[str, Any]) -> None:
        payments = await get_ok(
            self.client, self.tenant, "/api/payments", {"invoiceId": invoice["id"]}
        )
        left = {
            p["id"]: cents(p["amount"]) - cents(p["amountRefunded"])
            for p in payments["data"]
            if p["status"] == "succeeded"
        }
        payment = self.pick([p for p, amount in left.items() if amount > 0])
        if payment is None:
            return
        amount = money(self.rng.randint(1, left[payment] + 1))  # now and then one cent too many
        response = await self.post("/api/refunds", {"paymentId": payment, "amount": amount})
        if response.status_code == 201:
            event("refunded a payment")
            self.pending_refunds.append(response.json()["id"])

    async def refund_succeeds(self, _invoice: dict[str, Any], fail: bool = False) -> None:
        if not self.pending_refunds:
            return
        refund = await self.get(f"/api/refunds/{self.pending_refunds.pop(0)}")
        data = {"refundId": refund["id"], "amount": refund["amount"], "currency": "USD"}
        data |= {"failureCode": "refund_failed"} if fail else {"gatewayReference": "re_1"}
        await self.webhook("refund.failed" if fail else "refund.succeeded", data)

    async def refund_fails(self, invoice: dict[str, Any]) -> None:
        await self.refund_succeeds(invoice, fail=True)

    async def void_note(self, invoice: dict[str, Any]) -> None:
        notes = await get_ok(
            self.client, self.tenant, "/api/credit-notes", {"invoiceId": invoice["id"]}
        )
        note = self.pick([n["id"] for n in notes["data"] if n["status"] == "issued"])
        if note is not None and (await self.post(f"/api/credit-notes/{note}/void")).is_success:
            event("voided a credit note")

    async def void_invoice(self, invoice: dict[str, Any]) -> None:
        await self.post(f"/api/invoices/{invoice['id']}/void")

    async def adjust(self, invoice: dict[str, Any]) -> None:
        amount = money(self.rng.randint(-2000, 2000) or 1)
        body = {"currency": "USD", "amount": amount, "description": "Drawn"}
        await self.post(f"/api/customers/{invoice['customerId']}/balance-transactions", body)

    async def check(self) -> None:
        for invoice_id in self.invoices:
            invoice = await self.get(f"/api/invoices/{invoice_id}")
            due, total = cents(invoice["amountDue"]), cents(invoice["total"])
            applied, credited = cents(invoice["appliedBalance"]), cents(invoice["creditedAmount"])
            paid, refunded = cents(invoice["amountPaid"]), cents(invoice["amountRefunded"])
            if invoice["status"] != "void":
                assert due == total - applied - credited - paid >= 0, invoice
            assert 0 <= refunded <= paid, invoice
            refunds = await get_ok(
                self.client, self.tenant, "/api/refunds", {"invoiceId": invoice_id, "limit": 100}
            )
            taken: dict[str, int] = defaultdict(int)
            for refund in refunds["data"]:
                if refund["status"] != "failed":
                    taken[refund["paymentId"]] += cents(refund["amount"])
            assert sum(taken.values()) == refunded, invoice
            for payment_id, amount in taken.items():
                payment = await self.get(f"/api/payments/{payment_id}")
                assert cents(payment["amountRefunded"]) == amount <= cents(payment["amount"])
        for customer_id in self.customers:
            customer = await self.get(f"/api/customers/{customer_id}")
            entries = await get_ok(
                self.client,
                self.tenant,
                f"/api/customers/{customer_id}/balance-transactions",
                {"limit": 100},
            )
            total = sum(cents(e["amount"]) for e in entries["data"])
            assert money(total) == customer["balances"].get("USD", "0.00"), customer
            if entries["data"]:
                assert entries["data"][0]["balanceAfter"] == money(total)


@pytest.fixture
async def tenant(client: httpx.AsyncClient, admin: dict[str, str]) -> TenantHandle:
    return await make_tenant(client, admin, "Mixed")


@settings(
    max_examples=25,
    deadline=None,
    # One tenant's world grows across examples: the invariants hold for all of it at once.
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    ops=st.lists(st.sampled_from(OPS), min_size=4, max_size=14),
    seed=st.integers(0, 2**32),
)
async def test_any_mix_keeps_the_money_invariant(
    client: httpx.AsyncClient, tenant: TenantHandle, ops: list[str], seed: int
) -> None:
    mix = Mix(client, tenant, random.Random(seed))
    for op in ops:
        await mix.step(op)
    await mix.check()
