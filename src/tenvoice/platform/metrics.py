"""Prometheus series the platform keeps: requests by route template, idempotent replays,
outbox jobs (outcomes, run time, latency, what the table holds), connection pools in use;
and the counts by status that features keep in the database (StoredCounts).

Every series may live in several processes (`serve --workers N`): counters and histograms
add up across them (platform/metrics_process.py sets prometheus-client's multiprocess mode
up before this module is imported). Gauges say how: the pool in use is summed over the
live processes; a count read from the database at scrape is the same whichever process
read it, so the most recent reading is the one shown.

Labels are low-cardinality by rule: route templates, job kinds, statuses, outcomes; never a
tenant, an id, a path or a secret.
"""

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

from prometheus_client import Counter, Gauge, Histogram
from sqlalchemy.ext.asyncio import AsyncConnection

UNMATCHED = "unmatched"

REQUESTS = Counter(
    "tenvoice_http_requests_total", "HTTP requests served", ["method", "route", "status"]
)
LATENCY = Histogram(
    "tenvoice_http_request_duration_seconds",
    "Time to serve an HTTP request",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)
REPLAYS = Counter(
    "tenvoice_idempotent_replays_total",
    "Requests answered with the stored answer of an earlier one (Idempotency-Key)",
    ["route"],
)

JOBS = Counter(
    "tenvoice_outbox_jobs_total",
    "Outbox job attempts by outcome (done, retry, dead)",
    ["kind", "outcome"],
)
JOB_RUN = Histogram(
    "tenvoice_outbox_job_run_seconds",
    "Time one attempt of an outbox job ran, by kind",
    ["kind"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)
JOB_LATENCY = Histogram(
    "tenvoice_outbox_job_latency_seconds",
    "Time from when the attempt that finished a job was due to the job being done, by kind",
    ["kind"],
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 3600.0),
)
OUTBOX_STORED = Gauge(
    "tenvoice_outbox_jobs_stored",
    "Outbox jobs the database holds, by kind and status (pending, done, dead), all tenants",
    ["kind", "status"],
    multiprocess_mode="mostrecent",
)
OUTBOX_OLDEST_DUE = Gauge(
    "tenvoice_outbox_oldest_due_job_age_seconds",
    "How long the longest-waiting due, unclaimed pending job has been due (0: none waits)",
    multiprocess_mode="mostrecent",
)
POOL_IN_USE = Gauge(
    "tenvoice_db_pool_connections_in_use",
    "Database connections checked out of each pool (write, read), summed over processes",
    ["pool"],
    multiprocess_mode="livesum",
)


# Series name -> status -> rows.
StatusCounts = dict[str, dict[str, int]]


@dataclass(frozen=True)
class StoredCounts:
    """Rows by status that the database holds, not any one process (a feature's deliveries,
    say), across tenants: read when /metrics is scraped and printed by `tenvoice jobs`.
    Features declare theirs (tenvoice/handlers.py); the platform names none. Their gauges
    take `multiprocess_mode="mostrecent"`: any process's reading is the database's."""

    read: Callable[[AsyncConnection], Awaitable[StatusCounts]]
    # Series name -> the gauge it sets, labelled by status.
    gauges: Mapping[str, Gauge]
