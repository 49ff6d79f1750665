"""Credit notes issued one after another on random invoices: whatever is asked, what is
issued keeps the money rules, and what is refused is refused with a problem the API knows."""

import uuid
from dataclasses import replace
from decimal import Decimal

from hypothesis import event, given, settings
from hypothesis import strategies as st

from tenvoice.credits.amounts import (
    ByAmount,
    ByQuantity,
    Creditable,
    CreditableItem,
    CreditNoteAmounts,
    FreeLine,
    RequestedLine,
    Split,
    credit,
)
from tenvoice.invoices.amounts import Line, price_line
from tenvoice.platform.errors import AppError

CURRENCY = "EUR"


@st.composite
def invoices(draw: st.DrawFn) -> Creditable:
    items: dict[uuid.UUID, CreditableItem] = {}
    total = 0
    for n in range(draw(st.integers(1, 4))):
        quantity = Decimal(draw(st.integers(1, 40))) / draw(st.sampled_from([1, 2, 4]))
        price = Decimal(draw(st.integers(1, 500_000))) / 1000
        rate = Decimal(draw(st.sampled_from([0, 5, 7, 11, 20, 21])))
        subtotal, tax = price_line(Line(f"item {n}", quantity, price, rate), CURRENCY)
        item_id = uuid.UUID(int=n + 1)
        items[item_id] = CreditableItem(item_id, f"item {n}", quantity, price, rate, subtotal)
        total += subtotal + tax
    paid = draw(st.integers(0, total))
    pending = draw(st.integers(0, total - paid))
    status = "paid" if paid == total else draw(st.sampled_from(["open", "uncollectible"]))
    return Creditable(CURRENCY, status, total, total - paid, pending, 0, paid, items)


def requests(invoice: Creditable) -> st.SearchStrategy[list[RequestedLine]]:
    ids = list(invoice.items)
    line = st.one_of(
        st.builds(
            ByQuantity,
            st.sampled_from(ids),
            st.integers(1, 12).map(lambda q: Decimal(q) / 4),
        ),
        st.builds(ByAmount, st.sampled_from(ids), st.integers(1, 60_000)),
        st.builds(
            FreeLine,
            st.just("free"),
            st.integers(1, 20_000),
            st.sampled_from([Decimal(0), Decimal(10)]),
        ),
    )
    return st.lists(line, min_size=1, max_size=3)


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_credit_notes_one_after_another_keep_the_money_rules(data: st.DataObject) -> None:
    invoice = data.draw(invoices())
    start = invoice
    for _ in range(data.draw(st.integers(1, 6))):
        lines = data.draw(requests(invoice))
        # How the post-payment part would go back: as refund up to what is refundable, the
        # rest as credit; or, sometimes, a split that does not add up.
        wrong = data.draw(st.integers(0, 1)) * data.draw(st.integers(1, 100))
        try:
            preview = credit(invoice, lines, Split())
        except AppError:
            preview = None
        post = preview.post_payment if preview else 0
        refund = min(post, invoice.refundable)
        split = Split(refund=refund, credit=post - refund + wrong)
        try:
            note = credit(invoice, lines, split)
        except AppError as refused:
            event(f"refused: {refused.code}")
            continue  # refused with a problem of the API; nothing changes
        event("issued")
        # Only where the preview told the test the post-payment part is `wrong` known to be
        # off; a guess made without it may happen to be right.
        assert wrong == 0 or preview is None
        assert 0 <= note.pre_payment <= note.total
        assert note.pre_payment + note.refund + note.credit + note.out_of_band == note.total
        assert note.pre_payment <= max(0, invoice.amount_due - invoice.amount_pending)
        assert note.refund <= invoice.refundable
        invoice = issued(invoice, note)
        # The invariants of the invoice after it.
        assert invoice.credited <= start.total
        assert invoice.amount_due >= 0
        for item in invoice.items.values():
            original = start.items[item.id]
            assert item.credited_subtotal <= original.subtotal
            assert item.credited_quantity <= original.quantity


def issued(invoice: Creditable, note: CreditNoteAmounts) -> Creditable:
    """The invoice as the next credit note sees it once `note` is issued."""
    items = dict(invoice.items)
    for line in note.lines:
        if line.item_id is None:
            continue
        item = items[line.item_id]
        items[line.item_id] = replace(
            item,
            credited_quantity=item.credited_quantity + (line.quantity or 0),
            credited_subtotal=item.credited_subtotal + line.subtotal,
        )
    return replace(
        invoice,
        credited=invoice.credited + note.total,
        amount_due=invoice.amount_due - note.pre_payment,
        refundable=invoice.refundable - note.refund,
        items=items,
    )
