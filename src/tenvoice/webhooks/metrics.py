"""The webhooks' metrics: attempts by outcome as they happen, and deliveries and endpoints by
status as the database holds them (read when /metrics is scraped)."""

from prometheus_client import Counter, Gauge

from tenvoice.platform.metrics import StoredCounts
from tenvoice.webhooks.delivery_queries import DELIVERIES, ENDPOINTS, webhook_counts

ATTEMPTS = Counter(
    "tenvoice_webhook_attempts_total",
    "Webhook delivery attempts by outcome (succeeded; retry: failed, to be tried again; "
    "failed: failed for good)",
    ["outcome"],
)

STORED = StoredCounts(
    webhook_counts,
    {
        DELIVERIES: Gauge(
            "tenvoice_webhook_deliveries", "Webhook deliveries by status, all tenants", ["status"]
        ),
        ENDPOINTS: Gauge(
            "tenvoice_webhook_endpoints", "Webhook endpoints by status, all tenants", ["status"]
        ),
    },
)
