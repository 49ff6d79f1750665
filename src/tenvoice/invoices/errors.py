from tenvoice.platform.errors import Conflict, NotFound


class InvoiceNotFound(NotFound):
    code = "invoice_not_found"
    title = "Invoice not found"


class InvalidInvoiceTransition(Conflict):
    code = "invalid_invoice_transition"
    title = "The invoice cannot make that transition"


class InvoiceNotEditable(Conflict):
    code = "invoice_not_editable"
    title = "Only draft invoices can be edited"


class InvoiceNotDeletable(Conflict):
    code = "invoice_not_deletable"
    title = "Only draft invoices can be deleted"


class CustomerDeleted(Conflict):
    code = "customer_deleted"
    title = "The invoice's customer has been deleted"


class InvoiceNotPayable(Conflict):
    code = "invoice_not_payable"
    title = "Only open or uncollectible invoices take payments"


class AmountExceedsBalance(Conflict):
    code = "amount_exceeds_balance"
    title = "The amount is more than the invoice still owes"


class InvoiceHasPendingPayments(Conflict):
    code = "invoice_has_pending_payments"
    title = "The invoice has payments awaiting the gateway"
