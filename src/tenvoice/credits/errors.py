from tenvoice.platform.errors import Conflict, NotFound, ValidationFailed


class InvoiceNotCreditable(Conflict):
    code = "invoice_not_creditable"
    title = "Only open, paid or uncollectible invoices take credit notes"


class AmountExceedsCreditable(Conflict):
    code = "amount_exceeds_creditable"
    title = "The credit note credits more than the invoice has left to credit"


class AmountExceedsRefundable(Conflict):
    code = "amount_exceeds_refundable"
    title = "The refund is more than the payments can still refund"


class CreditNoteAmountsMismatch(ValidationFailed):
    code = "credit_note_amounts_mismatch"


class CreditNoteNotVoidable(Conflict):
    code = "credit_note_not_voidable"
    title = "The credit note's refunds went through or its credit is spent"


class InsufficientBalance(Conflict):
    code = "insufficient_balance"
    title = "The customer's balance would go below 0"


class InvalidRefundTransition(Conflict):
    code = "invalid_refund_transition"
    title = "The refund cannot make that change"


class CreditNoteNotFound(NotFound):
    code = "credit_note_not_found"
    title = "Credit note not found"


class RefundNotFound(NotFound):
    code = "refund_not_found"
    title = "Refund not found"


class PaymentNotRefundable(Conflict):
    code = "payment_not_refundable"
    title = "Only succeeded payments can be refunded"
