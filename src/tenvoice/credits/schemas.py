from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

from pydantic import Field

from tenvoice.credits.models import CreditNoteReason, RefundReason
from tenvoice.platform.money import currency_exponent, format_decimal, format_minor
from tenvoice.platform.schemas import (
    NOT_BLANK,
    AmountInput,
    AmountOrZero,
    Currency,
    InputModel,
    Metadata,
    OutputModel,
    Quantity,
    SignedAmount,
    TaxRate,
)

Memo = Annotated[str, Field(max_length=5000)]
Description = Annotated[str, Field(min_length=1, max_length=500, pattern=NOT_BLANK)]


class CreditNoteLineIn(InputModel):
    """An invoice item by `quantity` or by pre-tax `amount`; or a free line with
    `description`, `amount` and an optional `taxRate`."""

    invoice_item_id: UUID | None = None
    quantity: Quantity | None = None
    amount: AmountInput | None = None
    description: Description | None = None
    tax_rate: TaxRate | None = None


class CreditNoteCreate(InputModel):
    invoice_id: UUID
    lines: Annotated[list[CreditNoteLineIn], Field(min_length=1, max_length=500)]
    reason: CreditNoteReason | None = None
    memo: Memo | None = None
    refund_amount: AmountOrZero | None = None
    credit_amount: AmountOrZero | None = None
    out_of_band_amount: AmountOrZero | None = None
    metadata: Metadata = Field(default_factory=dict)


class CreditNoteLineOut(OutputModel):
    id: UUID
    invoice_item_id: UUID | None
    description: str
    quantity: str | None
    unit_amount: str
    tax_rate: str
    subtotal: str
    tax: str
    total: str


class CreditNoteOut(OutputModel):
    id: UUID
    number: str
    invoice_id: UUID
    customer_id: UUID
    currency: str
    status: str
    reason: str | None
    memo: str | None
    lines: list[CreditNoteLineOut]
    subtotal: str
    tax: str
    total: str
    pre_payment_amount: str
    refund_amount: str
    credit_amount: str
    out_of_band_amount: str
    refund_ids: list[UUID]
    metadata: dict[str, str]
    created_at: datetime
    voided_at: datetime | None


class RefundCreate(InputModel):
    payment_id: UUID
    amount: AmountInput | None = None
    reason: RefundReason | None = None


class RefundOut(OutputModel):
    id: UUID
    payment_id: UUID
    invoice_id: UUID
    credit_note_id: UUID | None
    amount: str
    currency: str
    status: str
    reason: str | None
    failure_code: str | None
    gateway_reference: str | None
    created_at: datetime
    succeeded_at: datetime | None
    failed_at: datetime | None


class BalanceTransactionCreate(InputModel):
    currency: Currency
    amount: SignedAmount
    description: Description | None = None


class BalanceTransactionOut(OutputModel):
    id: UUID
    currency: str
    amount: str
    type: str
    credit_note_id: UUID | None
    invoice_id: UUID | None
    description: str | None
    balance_after: str
    created_at: datetime


def credit_line_view(line: Any, currency: str) -> CreditNoteLineOut:
    return CreditNoteLineOut.model_construct(
        id=line.id,
        invoice_item_id=line.invoice_item_id,
        description=line.description,
        quantity=None if line.quantity is None else format_decimal(line.quantity),
        unit_amount=format_decimal(line.unit_amount, currency_exponent(currency)),
        tax_rate=format_decimal(line.tax_rate),
        subtotal=format_minor(line.subtotal, currency),
        tax=format_minor(line.tax, currency),
        total=format_minor(line.total, currency),
    )


def credit_note_view(note: Any, lines: list[Any], refund_ids: list[UUID]) -> CreditNoteOut:
    """The wire form from the aggregate or from selected rows (same attribute names)."""
    currency: str = note.currency

    def money(minor: int) -> str:
        return format_minor(minor, currency)

    return CreditNoteOut.model_construct(
        id=note.id,
        number=note.number,
        invoice_id=note.invoice_id,
        customer_id=note.customer_id,
        currency=currency,
        status=note.status,
        reason=note.reason,
        memo=note.memo,
        lines=[credit_line_view(line, currency) for line in lines],
        subtotal=money(note.subtotal),
        tax=money(note.tax),
        total=money(note.total),
        pre_payment_amount=money(note.pre_payment_amount),
        refund_amount=money(note.refund_amount),
        credit_amount=money(note.credit_amount),
        out_of_band_amount=money(note.out_of_band_amount),
        refund_ids=refund_ids,
        metadata=note.metadata_,
        created_at=note.created_at,
        voided_at=note.voided_at,
    )


def note_view(note: Any) -> CreditNoteOut:
    """The wire form of the aggregate, whose commands load its lines and refunds."""
    return credit_note_view(note, note.lines, [refund.id for refund in note.refunds])


def refund_view(refund: Any) -> RefundOut:
    return RefundOut.model_construct(
        id=refund.id,
        payment_id=refund.payment_id,
        invoice_id=refund.invoice_id,
        credit_note_id=refund.credit_note_id,
        amount=format_minor(refund.amount, refund.currency),
        currency=refund.currency,
        status=refund.status,
        reason=refund.reason,
        failure_code=refund.failure_code,
        gateway_reference=refund.gateway_reference,
        created_at=refund.created_at,
        succeeded_at=refund.succeeded_at,
        failed_at=refund.failed_at,
    )


def balance_transaction_view(entry: Any) -> BalanceTransactionOut:
    return BalanceTransactionOut.model_construct(
        id=entry.id,
        currency=entry.currency,
        amount=format_minor(entry.amount, entry.currency),
        type=entry.type,
        credit_note_id=entry.credit_note_id,
        invoice_id=entry.invoice_id,
        description=entry.description,
        balance_after=format_minor(entry.balance_after, entry.currency),
        created_at=entry.created_at,
    )


def balances_view(amounts: dict[str, int]) -> dict[str, str]:
    return {
        currency: format_minor(amount, currency) for currency, amount in sorted(amounts.items())
    }
