from tenvoice.platform.errors import Conflict, NotFound


class CustomerNotFound(NotFound):
    code = "customer_not_found"
    title = "Customer not found"


class CustomerHasOpenInvoices(Conflict):
    code = "customer_has_open_invoices"
    title = "The customer has open invoices"
