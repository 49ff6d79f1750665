"""The credit note's and the refund's state rules, without a database."""

import uuid
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from tenvoice.credits.amounts import CreditLine, CreditNoteAmounts
from tenvoice.credits.errors import CreditNoteNotVoidable, InvalidRefundTransition
from tenvoice.credits.events import CreditNoteVoided, RefundFailed, RefundSucceeded
from tenvoice.credits.models import CreditNote, Refund

AT = datetime(2026, 12, 3, tzinfo=UTC)


def note(pre_payment: int = 0, refund: int = 0) -> CreditNote:
    line = CreditLine(None, "Goodwill", None, Decimal("10.00"), Decimal(0), 1000, 0)
    amounts = CreditNoteAmounts((line,), pre_payment, refund, 1000 - pre_payment - refund, 0)
    issued = CreditNote.issue(
        invoice_id=uuid.uuid4(),
        customer_id=uuid.uuid4(),
        currency="USD",
        number="INV-2026-00001-CN-01",
        amounts=amounts,
        reason=None,
        memo=None,
        metadata={},
        at=AT,
    )
    issued.pull_events()
    return issued


def test_a_note_voids_once_and_says_so() -> None:
    issued = note()
    issued.void([], "open", AT)
    assert (issued.status, issued.voided_at) == ("void", AT)
    assert [type(e) for e in issued.pull_events()] == [CreditNoteVoided]
    with pytest.raises(CreditNoteNotVoidable):
        issued.void([], "open", AT)


@pytest.mark.parametrize("statuses", [["pending"], ["succeeded"], ["failed", "succeeded"]])
def test_a_note_whose_money_went_back_or_may_still_go_stands(statuses: list[str]) -> None:
    issued = note(refund=1000)
    with pytest.raises(CreditNoteNotVoidable):
        issued.void(statuses, "paid", AT)
    assert issued.status == "issued"


def test_failed_refunds_do_not_hold_a_note() -> None:
    issued = note(refund=1000)
    issued.void(["failed", "failed"], "paid", AT)
    assert issued.status == "void"


def test_a_note_that_lowered_what_a_now_paid_invoice_owed_stands() -> None:
    with pytest.raises(CreditNoteNotVoidable):
        note(pre_payment=400).void([], "paid", AT)
    for status in ("open", "uncollectible"):
        note(pre_payment=400).void([], status, AT)


def refund() -> Refund:
    made = Refund.request(
        payment_id=uuid.uuid4(),
        invoice_id=uuid.uuid4(),
        charge_reference="sim_ch_1",
        amount=500,
        currency="USD",
        reason=None,
        credit_note=None,
        tenant_id=uuid.uuid4(),
        at=AT,
    )
    made.pull_events()
    return made


def test_a_refund_settles_once_either_way() -> None:
    succeeded, failed = refund(), refund()
    succeeded.succeed("sim_re_1", AT)
    failed.fail("refund_failed", None, AT)
    assert [type(e) for e in succeeded.pull_events()] == [RefundSucceeded]
    assert [type(e) for e in failed.pull_events()] == [RefundFailed]
    for settled in (succeeded, failed):
        with pytest.raises(InvalidRefundTransition):
            settled.succeed("sim_re_2", AT)
        with pytest.raises(InvalidRefundTransition):
            settled.fail("refund_failed", None, AT)
