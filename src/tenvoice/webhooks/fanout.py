"""How a delivery reaches the worker: a `webhook.dispatch` outbox job per endpoint.

The delivery rows are the queue; the job only says "endpoint X has something due". The
dispatcher that runs it holds the endpoint's lease and absorbs every other dispatch job of
the endpoint that nobody has claimed yet, so a burst of events costs one job run, not one
per event.
"""

import uuid
from datetime import datetime

from tenvoice.platform.db import WriteSession
from tenvoice.platform.outbox import enqueue

DISPATCH = "webhook.dispatch"


def dispatch_key(endpoint_id: uuid.UUID) -> str:
    return f"{DISPATCH}:{endpoint_id}"


def wake(
    session: WriteSession,
    tenant_id: uuid.UUID,
    endpoint_id: uuid.UUID,
    *,
    at: datetime | None = None,
) -> None:
    """Queue a dispatch of the endpoint's due deliveries, in the session's transaction."""
    enqueue(
        session,
        DISPATCH,
        {"endpointId": str(endpoint_id)},
        tenant_id=tenant_id,
        not_before=at,
        dedupe_key=dispatch_key(endpoint_id),
    )
