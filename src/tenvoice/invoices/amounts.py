"""An invoice's amounts as rules, without I/O: how a line is priced, what the customer still
owes, and what a credit note takes of an invoice."""

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal, localcontext
from typing import Protocol

from tenvoice.platform.money import currency_exponent, round_half_up, to_minor

# Settled or cancelled: nothing is owed (the values of InvoiceStatus.PAID and VOID).
_NOTHING_OWED = ("paid", "void")


@dataclass(frozen=True, slots=True)
class Line:
    description: str
    quantity: Decimal
    unit_price: Decimal
    tax_rate: Decimal


def price_line(line: Line, currency: str) -> tuple[int, int]:
    """(subtotal, tax) in minor units, each rounded half-up to the currency's minor unit."""
    exponent = currency_exponent(currency)
    # quantity (4 places) x unitPrice (6 places) can need 31 digits: more than the default
    # context's 28, which would round silently before our own rounding.
    with localcontext(prec=60):
        subtotal = round_half_up(line.quantity * line.unit_price, exponent)
        tax = round_half_up(subtotal * line.tax_rate / 100, exponent)
    return to_minor(subtotal, currency), to_minor(tax, currency)


@dataclass(frozen=True, slots=True)
class Credited:
    """What one credit note takes of the invoice: its total, its pre-payment part, and per
    item the quantity (0 for a line by amount) and the pre-tax amount."""

    total: int
    pre_payment: int
    items: Sequence[tuple[uuid.UUID, Decimal, int]]


class Owed(Protocol):
    status: str
    total: int
    amount_paid: int
    applied_balance: int
    credited_amount: int


def amount_due(invoice: Owed) -> int:
    """What the customer still owes (API.md): total - appliedBalance - creditedAmount -
    amountPaid; nothing once paid or voided."""
    if invoice.status in _NOTHING_OWED:
        return 0
    return invoice.total - invoice.applied_balance - invoice.credited_amount - invoice.amount_paid
