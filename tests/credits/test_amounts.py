"""A credit note's amounts on their own, without a database: the lines, the pre- and
post-payment parts, and every limit (API.md, "Credit notes and refunds")."""

import uuid
from dataclasses import replace
from decimal import Decimal

import pytest

from tenvoice.credits.amounts import (
    ByAmount,
    ByQuantity,
    Creditable,
    CreditableItem,
    FreeLine,
    Split,
    credit,
)
from tenvoice.credits.errors import (
    AmountExceedsCreditable,
    AmountExceedsRefundable,
    CreditNoteAmountsMismatch,
    InvoiceNotCreditable,
)
from tenvoice.platform.errors import ValidationFailed

CONSULTING = uuid.UUID(int=1)
SUPPORT = uuid.UUID(int=2)


def invoice(**changes: object) -> Creditable:
    """2 x 100.00 consulting and 1 x 50.00 support at 11%: 250.00 + 27.50 = 277.50, open."""
    items = {
        CONSULTING: CreditableItem(
            CONSULTING, "Consulting", Decimal(2), Decimal(100), Decimal(11), 20000
        ),
        SUPPORT: CreditableItem(SUPPORT, "Support", Decimal(1), Decimal(50), Decimal(11), 5000),
    }
    base = Creditable(
        currency="USD",
        status="open",
        total=27750,
        amount_due=27750,
        amount_pending=0,
        credited=0,
        refundable=0,
        items=items,
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def paid(**changes: object) -> Creditable:
    return invoice(**{"status": "paid", "amount_due": 0, "refundable": 27750, **changes})


def test_a_quantity_line_credits_at_the_items_price_and_tax_rate() -> None:
    note = credit(invoice(), [ByQuantity(CONSULTING, Decimal(1))], Split())
    (line,) = note.lines
    assert (line.item_id, line.description, line.quantity) == (CONSULTING, "Consulting", Decimal(1))
    assert (line.unit_amount, line.tax_rate) == (Decimal(100), Decimal(11))
    assert (line.subtotal, line.tax, line.total) == (10000, 1100, 11100)
    assert (note.subtotal, note.tax, note.total) == (10000, 1100, 11100)


def test_an_amount_line_credits_before_tax_at_the_items_tax_rate() -> None:
    note = credit(invoice(), [ByAmount(SUPPORT, 1234)], Split())
    (line,) = note.lines
    assert (line.quantity, line.unit_amount) == (None, Decimal("12.34"))
    # 12.34 x 11% = 1.3574: rounded half-up to 1.36.
    assert (line.subtotal, line.tax) == (1234, 136)


def test_a_free_line_has_its_own_amount_and_tax_rate() -> None:
    note = credit(invoice(), [FreeLine("Goodwill", 1000, Decimal("7.5"))], Split())
    (line,) = note.lines
    assert (line.item_id, line.description, line.quantity) == (None, "Goodwill", None)
    # 10.00 x 7.5% = 0.75.
    assert (line.subtotal, line.tax, line.total) == (1000, 75, 1075)


def test_each_line_rounds_half_up_on_its_own() -> None:
    items = {
        CONSULTING: CreditableItem(
            CONSULTING, "Minutes", Decimal(3), Decimal("0.335"), Decimal(10), 101
        )
    }
    creditable = invoice(items=items, total=111, amount_due=111)
    # 0.335 each: one line of 1 -> 0.34 (tax 0.03), and one more of 1 -> 0.34 again; the
    # item's 3 x 0.335 = 1.005 -> 1.01 leaves 0.33 for the last one, which is refused.
    note = credit(
        creditable,
        [ByQuantity(CONSULTING, Decimal(1)), ByQuantity(CONSULTING, Decimal(1))],
        Split(),
    )
    assert [(line.subtotal, line.tax) for line in note.lines] == [(34, 3), (34, 3)]
    taken = replace(items[CONSULTING], credited_quantity=Decimal(2), credited_subtotal=68)
    with pytest.raises(AmountExceedsCreditable):
        credit(
            replace(creditable, items={CONSULTING: taken}, credited=74),
            [ByQuantity(CONSULTING, Decimal(1))],
            Split(),
        )


def test_amounts_follow_the_currencys_minor_unit() -> None:
    items = {
        CONSULTING: CreditableItem(CONSULTING, "Night", Decimal(1), Decimal(9999), Decimal(8), 9999)
    }
    yen = invoice(currency="JPY", items=items, total=10799, amount_due=10799)
    note = credit(yen, [ByAmount(CONSULTING, 1235)], Split())
    # 1235 x 8% = 98.8 -> 99 yen.
    assert (note.subtotal, note.tax) == (1235, 99)


# -- what lowers the amount due, and what goes back ------------------------------------------


def test_on_an_unpaid_invoice_everything_lowers_what_is_owed() -> None:
    note = credit(invoice(), [ByQuantity(SUPPORT, Decimal(1))], Split())
    assert (note.total, note.pre_payment, note.post_payment) == (5550, 5550, 0)
    assert (note.refund, note.credit, note.out_of_band) == (0, 0, 0)


def test_on_a_paid_invoice_everything_goes_back_split_exactly() -> None:
    split = Split(refund=3000, credit=2000, out_of_band=550)
    note = credit(paid(), [ByQuantity(SUPPORT, Decimal(1))], split)
    assert (note.pre_payment, note.post_payment) == (0, 5550)
    assert (note.refund, note.credit, note.out_of_band) == (3000, 2000, 550)


@pytest.mark.parametrize(
    "split",
    [Split(), Split(refund=5549), Split(refund=5000, credit=551), Split(out_of_band=5551)],
)
def test_the_post_payment_part_must_be_split_exactly(split: Split) -> None:
    with pytest.raises(CreditNoteAmountsMismatch) as refused:
        credit(paid(), [ByQuantity(SUPPORT, Decimal(1))], split)
    assert "must be 55.50 USD" in refused.value.detail


def test_a_partly_paid_invoice_splits_at_what_is_still_owed() -> None:
    # 277.50, of which 200.00 paid and 50.00 on its way: 27.50 can still be lowered.
    partly = invoice(amount_due=7750, amount_pending=5000, refundable=20000)
    note = credit(partly, [ByQuantity(CONSULTING, Decimal(1))], Split(refund=8350))
    assert (note.total, note.pre_payment, note.post_payment) == (11100, 2750, 8350)


def test_a_refund_is_at_most_what_the_payments_can_still_give_back() -> None:
    with pytest.raises(AmountExceedsRefundable) as refused:
        credit(paid(refundable=5000), [ByQuantity(SUPPORT, Decimal(1))], Split(refund=5550))
    assert "50.00 USD" in refused.value.detail
    note = credit(
        paid(refundable=5000), [ByQuantity(SUPPORT, Decimal(1))], Split(refund=5000, credit=550)
    )
    assert note.refund == 5000


def test_negative_split_amounts_are_refused() -> None:
    with pytest.raises(ValidationFailed):
        credit(paid(), [ByQuantity(SUPPORT, Decimal(1))], Split(refund=6550, credit=-1000))


# -- limits ----------------------------------------------------------------------------------


def test_never_more_than_is_left_of_an_item_by_quantity() -> None:
    with pytest.raises(AmountExceedsCreditable):
        credit(invoice(), [ByQuantity(CONSULTING, Decimal(3))], Split())
    # Two lines on one item count together.
    with pytest.raises(AmountExceedsCreditable):
        credit(
            invoice(),
            [ByQuantity(CONSULTING, Decimal("1.5")), ByQuantity(CONSULTING, Decimal(1))],
            Split(),
        )
    # What earlier credit notes took is gone.
    taken = replace(
        invoice().items[CONSULTING], credited_quantity=Decimal(2), credited_subtotal=20000
    )
    items = {**invoice().items, CONSULTING: taken}
    with pytest.raises(AmountExceedsCreditable):
        credit(invoice(items=items, credited=22200), [ByQuantity(CONSULTING, Decimal(1))], Split())


def test_never_more_than_is_left_of_an_item_by_amount() -> None:
    with pytest.raises(AmountExceedsCreditable):
        credit(invoice(), [ByAmount(SUPPORT, 5001)], Split())
    # An amount credited before leaves the quantity, not the money: one unit (50.00) no
    # longer fits once 10.00 of the item is gone.
    taken = replace(invoice().items[SUPPORT], credited_subtotal=1000)
    items = {**invoice().items, SUPPORT: taken}
    with pytest.raises(AmountExceedsCreditable):
        credit(invoice(items=items, credited=1110), [ByQuantity(SUPPORT, Decimal(1))], Split())
    assert credit(invoice(items=items, credited=1110), [ByAmount(SUPPORT, 4000)], Split())


def test_never_more_than_the_invoice_has_left_to_credit() -> None:
    with pytest.raises(AmountExceedsCreditable) as refused:
        credit(invoice(credited=27000), [FreeLine("Refund of shipping", 1000)], Split())
    assert "7.50 USD" in refused.value.detail
    note = credit(invoice(credited=27000), [FreeLine("Shipping", 750)], Split())
    assert note.total == 750


@pytest.mark.parametrize("status", ["draft", "void"])
def test_only_finalized_live_invoices_take_credit_notes(status: str) -> None:
    with pytest.raises(InvoiceNotCreditable):
        credit(invoice(status=status), [ByQuantity(SUPPORT, Decimal(1))], Split())


@pytest.mark.parametrize(
    ("line", "field"),
    [
        (ByQuantity(uuid.UUID(int=9), Decimal(1)), "lines[0].invoiceItemId"),
        (ByQuantity(SUPPORT, Decimal(0)), "lines[0].quantity"),
        (ByQuantity(SUPPORT, Decimal(-1)), "lines[0].quantity"),
        (ByAmount(SUPPORT, 0), "lines[0].amount"),
        (FreeLine("Nothing", -5), "lines[0].amount"),
    ],
)
def test_lines_that_credit_nothing_real_are_refused(line: object, field: str) -> None:
    with pytest.raises(ValidationFailed) as refused:
        credit(invoice(), [line], Split())  # type: ignore[list-item]
    assert refused.value.errors is not None
    assert refused.value.errors[0].field == field


def test_a_credit_note_credits_at_least_one_line() -> None:
    with pytest.raises(ValidationFailed):
        credit(invoice(), [], Split())
