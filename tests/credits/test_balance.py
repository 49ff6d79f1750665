"""A customer's balance and its ledger on their own, without a database."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tenvoice.credits.balance import Balance, Entry, EntryType
from tenvoice.credits.errors import CreditNoteNotVoidable, InsufficientBalance
from tenvoice.platform.errors import AppError, ValidationFailed


def test_credit_notes_add_and_an_invoice_takes_up_to_its_total() -> None:
    balance, entry = Balance("USD").credit_from_note(1250)
    assert (balance.amount, entry) == (1250, Entry(EntryType.CREDIT_NOTE, 1250, 1250))
    balance, applied = balance.apply_to_invoice(1000)
    assert (balance.amount, applied) == (250, Entry(EntryType.APPLIED_TO_INVOICE, -1000, 250))
    balance, applied = balance.apply_to_invoice(1000)
    assert (balance.amount, applied) == (0, Entry(EntryType.APPLIED_TO_INVOICE, -250, 0))
    # Nothing left: the next invoice takes nothing, and nothing is written.
    assert balance.apply_to_invoice(1000) == (balance, None)


def test_an_adjustment_may_not_take_the_balance_below_zero() -> None:
    balance, _ = Balance("EUR").adjust(500)
    balance, entry = balance.adjust(-500)
    assert (balance.amount, entry.type, entry.amount) == (0, EntryType.ADJUSTMENT, -500)
    with pytest.raises(InsufficientBalance) as refused:
        balance.adjust(-1)
    assert "0.00 EUR" in refused.value.detail
    with pytest.raises(ValidationFailed):
        balance.adjust(0)


def test_voiding_takes_back_only_unspent_credit() -> None:
    balance, _ = Balance("USD").credit_from_note(1000)
    spent, _ = balance.apply_to_invoice(400)
    with pytest.raises(CreditNoteNotVoidable):
        spent.take_back_note_credit(1000)
    balance, entry = balance.take_back_note_credit(1000)
    assert (balance.amount, entry.type, entry.amount) == (0, EntryType.CREDIT_NOTE_VOIDED, -1000)


operations = st.lists(
    st.tuples(st.sampled_from(["note", "invoice", "adjust", "void"]), st.integers(-5000, 5000)),
    max_size=40,
)


@settings(max_examples=300, deadline=None)
@given(operations)
def test_the_ledger_always_sums_to_the_balance_and_never_goes_negative(
    steps: list[tuple[str, int]],
) -> None:
    balance = Balance("USD")
    ledger: list[Entry] = []
    for kind, amount in steps:
        try:
            if kind == "note":
                balance, entry = balance.credit_from_note(abs(amount) or 1)
            elif kind == "invoice":
                balance, applied = balance.apply_to_invoice(abs(amount))
                if applied is None:
                    continue
                entry = applied
            elif kind == "adjust":
                balance, entry = balance.adjust(amount)
            else:
                balance, entry = balance.take_back_note_credit(abs(amount) or 1)
        except AppError:
            continue  # refused: nothing written
        ledger.append(entry)
        assert entry.balance_after == balance.amount >= 0
    assert sum(entry.amount for entry in ledger) == balance.amount
    running = 0
    for entry in ledger:
        running += entry.amount
        assert entry.balance_after == running
