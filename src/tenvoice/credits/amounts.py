"""What a credit note credits, worked out from the invoice as it stands: rules only, no I/O.

After Stripe's credit notes (API.md, "Credit notes and refunds"):

- A line credits one of the invoice's items by quantity (at the item's unit price and tax
  rate, at most the quantity not yet credited) or by a pre-tax amount (at the item's tax
  rate, at most the subtotal not yet credited), or it is a free line. Each line is priced as
  an invoice line is: subtotal and tax rounded half-up to the currency's minor unit, line by
  line.
- The credit notes of an invoice never credit more than its total.
- The part of the total that lowers what is still owed comes first: the pre-payment amount,
  min(total, amount due less what payments on their way hold). The rest, the post-payment
  part, is split exactly into refund, customer credit and money returned out of band; the
  refund is at most what the invoice's payments can still give back.

Amounts are integer minor units; quantities and unit prices exact Decimals.
"""

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal

from tenvoice.credits.errors import (
    AmountExceedsCreditable,
    AmountExceedsRefundable,
    CreditNoteAmountsMismatch,
    InvoiceNotCreditable,
)
from tenvoice.invoices.amounts import Line, price_line
from tenvoice.invoices.models import InvoiceStatus
from tenvoice.platform.errors import ValidationFailed
from tenvoice.platform.money import currency_exponent, format_minor

CREDITABLE_STATUSES = frozenset(
    {InvoiceStatus.OPEN, InvoiceStatus.PAID, InvoiceStatus.UNCOLLECTIBLE}
)


@dataclass(frozen=True, slots=True)
class CreditableItem:
    """One invoice item, with what earlier credit notes took of it."""

    id: uuid.UUID
    description: str
    quantity: Decimal
    unit_price: Decimal
    tax_rate: Decimal
    subtotal: int
    credited_quantity: Decimal = Decimal(0)
    credited_subtotal: int = 0


@dataclass(frozen=True, slots=True)
class Creditable:
    """The invoice as a new credit note sees it."""

    currency: str
    status: str
    total: int
    amount_due: int
    amount_pending: int
    # The total of its issued credit notes.
    credited: int
    # What its succeeded payments can still refund.
    refundable: int
    items: Mapping[uuid.UUID, CreditableItem]


@dataclass(frozen=True, slots=True)
class ByQuantity:
    item_id: uuid.UUID
    quantity: Decimal


@dataclass(frozen=True, slots=True)
class ByAmount:
    item_id: uuid.UUID
    amount: int  # pre-tax


@dataclass(frozen=True, slots=True)
class FreeLine:
    description: str
    amount: int  # pre-tax
    tax_rate: Decimal = Decimal(0)


RequestedLine = ByQuantity | ByAmount | FreeLine


@dataclass(frozen=True, slots=True)
class Split:
    """How the post-payment part goes back: each defaults to nothing."""

    refund: int = 0
    credit: int = 0
    out_of_band: int = 0


@dataclass(frozen=True, slots=True)
class CreditLine:
    item_id: uuid.UUID | None
    description: str
    quantity: Decimal | None
    # Per unit for a quantity line; the line's pre-tax amount otherwise (quantity 1).
    unit_amount: Decimal
    tax_rate: Decimal
    subtotal: int
    tax: int

    @property
    def total(self) -> int:
        return self.subtotal + self.tax


@dataclass(frozen=True, slots=True)
class CreditNoteAmounts:
    lines: tuple[CreditLine, ...]
    pre_payment: int
    refund: int
    credit: int
    out_of_band: int

    @property
    def subtotal(self) -> int:
        return sum(line.subtotal for line in self.lines)

    @property
    def tax(self) -> int:
        return sum(line.tax for line in self.lines)

    @property
    def total(self) -> int:
        return self.subtotal + self.tax

    @property
    def post_payment(self) -> int:
        return self.total - self.pre_payment


def credit(
    invoice: Creditable, requested: Sequence[RequestedLine], split: Split
) -> CreditNoteAmounts:
    """The credit note `requested` would issue on `invoice`, or the error that refuses it."""
    if invoice.status not in CREDITABLE_STATUSES:
        raise InvoiceNotCreditable(f"The invoice is {invoice.status}; it takes no credit notes.")
    if not requested:
        raise ValidationFailed("lines", "must credit at least one line")
    lines = tuple(_price(invoice, requested))
    amounts = CreditNoteAmounts(lines, 0, split.refund, split.credit, split.out_of_band)

    left = invoice.total - invoice.credited
    if amounts.total > left:
        raise AmountExceedsCreditable(
            f"At most {_money(left, invoice.currency)} of this invoice can still be credited."
        )
    # Payments on their way hold their amount: crediting it could leave a payment landing on
    # an invoice that no longer owes it.
    owed = max(0, invoice.amount_due - invoice.amount_pending)
    pre_payment = min(amounts.total, owed)
    post_payment = amounts.total - pre_payment
    for name, amount in (
        ("refundAmount", split.refund),
        ("creditAmount", split.credit),
        ("outOfBandAmount", split.out_of_band),
    ):
        if amount < 0:
            raise ValidationFailed(name, "must not be negative")
    if split.refund + split.credit + split.out_of_band != post_payment:
        raise CreditNoteAmountsMismatch(
            "refundAmount",
            f"refundAmount + creditAmount + outOfBandAmount must be "
            f"{_money(post_payment, invoice.currency)}: the part of the credit note's "
            f"{_money(amounts.total, invoice.currency)} that the customer has paid.",
        )
    if split.refund > invoice.refundable:
        raise AmountExceedsRefundable(
            f"At most {_money(invoice.refundable, invoice.currency)} can be refunded."
        )
    return CreditNoteAmounts(lines, pre_payment, split.refund, split.credit, split.out_of_band)


def _price(invoice: Creditable, requested: Sequence[RequestedLine]) -> list[CreditLine]:
    # What this credit note has already taken of each item, so that two lines on one item
    # cannot together take more than is left of it.
    taken_quantity: dict[uuid.UUID, Decimal] = {}
    taken_subtotal: dict[uuid.UUID, int] = {}
    lines = []
    for n, line in enumerate(requested):
        field = f"lines[{n}]"
        if isinstance(line, FreeLine):
            if line.amount <= 0:
                raise ValidationFailed(f"{field}.amount", "must be more than 0")
            subtotal, tax = _priced(
                line.description,
                Decimal(1),
                _major(line.amount, invoice.currency),
                line.tax_rate,
                invoice.currency,
            )
            lines.append(
                CreditLine(
                    None,
                    line.description,
                    None,
                    _major(line.amount, invoice.currency),
                    line.tax_rate,
                    subtotal,
                    tax,
                )
            )
            continue
        item = invoice.items.get(line.item_id)
        if item is None:
            raise ValidationFailed(f"{field}.invoiceItemId", "is not an item of this invoice")
        quantity_left = (
            item.quantity - item.credited_quantity - taken_quantity.get(item.id, Decimal(0))
        )
        subtotal_left = item.subtotal - item.credited_subtotal - taken_subtotal.get(item.id, 0)
        if isinstance(line, ByQuantity):
            if line.quantity <= 0:
                raise ValidationFailed(f"{field}.quantity", "must be more than 0")
            if line.quantity > quantity_left:
                raise AmountExceedsCreditable(
                    f"Item {item.id} has {quantity_left} left to credit, not {line.quantity}."
                )
            subtotal, tax = _priced(
                item.description, line.quantity, item.unit_price, item.tax_rate, invoice.currency
            )
            quantity: Decimal | None = line.quantity
            unit_amount = item.unit_price
        else:
            if line.amount <= 0:
                raise ValidationFailed(f"{field}.amount", "must be more than 0")
            unit_amount = _major(line.amount, invoice.currency)
            subtotal, tax = _priced(
                item.description, Decimal(1), unit_amount, item.tax_rate, invoice.currency
            )
            quantity = None
        if subtotal > subtotal_left:
            raise AmountExceedsCreditable(
                f"Item {item.id} has {_money(subtotal_left, invoice.currency)} left to credit "
                f"before tax, not {_money(subtotal, invoice.currency)}."
            )
        taken_quantity[item.id] = taken_quantity.get(item.id, Decimal(0)) + (quantity or 0)
        taken_subtotal[item.id] = taken_subtotal.get(item.id, 0) + subtotal
        lines.append(
            CreditLine(
                item.id, item.description, quantity, unit_amount, item.tax_rate, subtotal, tax
            )
        )
    return lines


def _priced(
    description: str, quantity: Decimal, unit_price: Decimal, tax_rate: Decimal, currency: str
) -> tuple[int, int]:
    return price_line(Line(description, quantity, unit_price, tax_rate), currency)


def _major(minor: int, currency: str) -> Decimal:
    return Decimal(minor).scaleb(-currency_exponent(currency))


def _money(minor: int, currency: str) -> str:
    return f"{format_minor(minor, currency)} {currency}"
