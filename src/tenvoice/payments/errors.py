from tenvoice.platform.errors import Conflict, NotFound


class PaymentNotFound(NotFound):
    code = "payment_not_found"
    title = "Payment not found"


class InvalidPaymentTransition(Conflict):
    code = "invalid_payment_transition"
    title = "Invalid payment transition"
