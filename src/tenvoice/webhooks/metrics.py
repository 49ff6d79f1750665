"""The webhooks' metrics: attempts by outcome and response class as they happen, and
deliveries and endpoints by status as the database holds them (read when /metrics is
scraped)."""

from prometheus_client import Counter, Gauge

from tenvoice.platform.metrics import StoredCounts
from tenvoice.webhooks.delivery_queries import DELIVERIES, ENDPOINTS, webhook_counts

ATTEMPTS = Counter(
    "tenvoice_webhook_attempts_total",
    "Webhook delivery attempts by outcome (succeeded; retry: failed, to be tried again; "
    "failed: failed for good) and the receiver's response class (2xx..5xx; none: no "
    "response, such as a timeout or a refused connection)",
    ["outcome", "response"],
)


def response_class(status: int | None) -> str:
    """A status as a low-cardinality label: its class, or `none` when nothing answered."""
    if status is None or not 100 <= status <= 599:
        return "none"
    return f"{status // 100}xx"


STORED = StoredCounts(
    webhook_counts,
    {
        DELIVERIES: Gauge(
            "tenvoice_webhook_deliveries",
            "Webhook deliveries by status, all tenants",
            ["status"],
            multiprocess_mode="mostrecent",
        ),
        ENDPOINTS: Gauge(
            "tenvoice_webhook_endpoints",
            "Webhook endpoints by status, all tenants",
            ["status"],
            multiprocess_mode="mostrecent",
        ),
    },
)
