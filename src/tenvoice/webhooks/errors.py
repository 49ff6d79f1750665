from tenvoice.platform.errors import Conflict, NotFound


class WebhookEndpointNotFound(NotFound):
    code = "webhook_endpoint_not_found"
    title = "Webhook endpoint not found"


class TooManyEndpoints(Conflict):
    code = "too_many_endpoints"
    title = "Too many webhook endpoints"


class EndpointIsDisabled(Conflict):
    code = "webhook_endpoint_disabled"
    title = "The webhook endpoint is disabled"


class WebhookDeliveryNotFound(NotFound):
    code = "webhook_delivery_not_found"
    title = "Webhook delivery not found"
