"""A customer's balance in one currency and its ledger: rules only, no I/O.

Credit owed to the customer (API.md, "Customer balance"): credit notes add to it, an invoice
finalized in its currency takes what it can of it, an operator adjusts it, and voiding a
credit note takes its credit back. It is never negative, and every entry records the balance
right after it, so the ledger read in order always ends at the balance.
"""

from dataclasses import dataclass
from enum import StrEnum

from tenvoice.credits.errors import CreditNoteNotVoidable, InsufficientBalance
from tenvoice.platform.errors import ValidationFailed
from tenvoice.platform.money import format_minor


class EntryType(StrEnum):
    CREDIT_NOTE = "credit_note"
    APPLIED_TO_INVOICE = "applied_to_invoice"
    ADJUSTMENT = "adjustment"
    CREDIT_NOTE_VOIDED = "credit_note_voided"
    # A voided invoice gives back the credit it took (Stripe's unapplied_from_invoice).
    UNAPPLIED_FROM_INVOICE = "unapplied_from_invoice"


@dataclass(frozen=True, slots=True)
class Entry:
    type: EntryType
    amount: int  # signed: what it added to the balance
    balance_after: int


@dataclass(frozen=True, slots=True)
class Balance:
    currency: str
    amount: int = 0

    def credit_from_note(self, amount: int) -> tuple["Balance", Entry]:
        if amount <= 0:
            raise ValueError("a credit note adds a positive amount")
        return self._entry(EntryType.CREDIT_NOTE, amount)

    def apply_to_invoice(self, invoice_total: int) -> tuple["Balance", Entry | None]:
        """What a newly finalized invoice takes: all of it, up to the invoice's total."""
        applied = min(self.amount, invoice_total)
        if applied <= 0:
            return self, None
        return self._entry(EntryType.APPLIED_TO_INVOICE, -applied)

    def unapply_from_invoice(self, applied: int) -> tuple["Balance", Entry]:
        if applied <= 0:
            raise ValueError("an invoice gives back a positive amount")
        return self._entry(EntryType.UNAPPLIED_FROM_INVOICE, applied)

    def adjust(self, amount: int) -> tuple["Balance", Entry]:
        if amount == 0:
            raise ValidationFailed("amount", "must not be 0")
        if self.amount + amount < 0:
            raise InsufficientBalance(
                f"The balance is {self._money(self.amount)}; it cannot go below 0."
            )
        return self._entry(EntryType.ADJUSTMENT, amount)

    def take_back_note_credit(self, amount: int) -> tuple["Balance", Entry]:
        """Voiding a credit note takes back its credit, which must still be unspent."""
        if amount <= 0:
            raise ValueError("a credit note's credit is a positive amount")
        if amount > self.amount:
            raise CreditNoteNotVoidable(
                f"Its credit of {self._money(amount)} is partly spent: the balance is "
                f"{self._money(self.amount)}."
            )
        return self._entry(EntryType.CREDIT_NOTE_VOIDED, -amount)

    def _entry(self, type_: EntryType, amount: int) -> tuple["Balance", Entry]:
        after = self.amount + amount
        assert after >= 0
        return Balance(self.currency, after), Entry(type_, amount, after)

    def _money(self, minor: int) -> str:
        return f"{format_minor(minor, self.currency)} {self.currency}"
