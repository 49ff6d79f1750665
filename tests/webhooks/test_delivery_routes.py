"""The delivery log routes, manual redelivery, and the operator's view (`/metrics`,
`tenvoice jobs`) of deliveries and endpoints by status."""

import uuid
from datetime import datetime
from typing import Any

import httpx
from sqlalchemy import update

from tenvoice.config import Settings
from tenvoice.platform.db import Database, utcnow
from tenvoice.webhooks.models import WebhookEndpoint
from tests import cli
from tests.conftest import Backend, TenantHandle
from tests.problems import assert_problem
from tests.webhooks.deliveries import (
    Endpoint,
    add_endpoint,
    deliveries,
    delivery_settings,
    delivery_worker,
    publish,
)
from tests.webhooks.receivers import Received, Receiver, Reply, serving

NO_RETRY_SOON = (60.0,) * 7
WIRE = {
    "id",
    "endpointId",
    "eventId",
    "eventType",
    "status",
    "attempts",
    "nextAttemptAt",
    "lastAttemptAt",
    "lastResponseStatus",
    "createdAt",
}


async def deliver(db: Database, settings: Settings) -> None:
    later = delivery_settings(settings, webhook_retry_schedule=NO_RETRY_SOON)
    async with delivery_worker(db, later) as worker:
        await worker.drain()


def path(endpoint: Endpoint, *rest: str) -> str:
    return "/".join([f"/api/webhook-endpoints/{endpoint.id}/deliveries", *rest])


async def test_the_log_lists_newest_first_with_filters_and_both_kinds_of_page(
    client: httpx.AsyncClient, db: Database, settings: Settings, tenant_a: TenantHandle
) -> None:
    def answer(request: Received) -> Reply:
        mine = [r for r in receiver.received if r.path == "/hooks"]
        return Reply(500) if len(mine) % 3 == 0 else Reply(200)

    async with serving(Receiver(answer)) as receiver:
        endpoint = await add_endpoint(db, tenant_a.id, receiver.url())
        other = await add_endpoint(db, tenant_a.id, receiver.url("/other"))
        await publish(db, tenant_a.id, [endpoint], count=4, event_type="invoice.paid")
        await publish(db, tenant_a.id, [endpoint, other], count=2, event_type="customer.created")
        await deliver(db, settings)
    rows = await deliveries(db, endpoint)
    newest_first = [str(row.id) for row in sorted(rows, key=lambda r: (r.created_at, r.id))][::-1]

    listed = await client.get(path(endpoint), headers=tenant_a.headers)
    assert listed.status_code == 200, listed.text
    body = listed.json()
    assert [d["id"] for d in body["data"]] == newest_first
    assert body["pagination"] == {"page": 1, "pageSize": 10, "hasMore": False}
    assert all(set(d) == WIRE for d in body["data"])
    assert {d["endpointId"] for d in body["data"]} == {str(endpoint.id)}
    failed = [d for d in body["data"] if d["status"] == "pending"]
    assert len(failed) == 2  # the 3rd and 6th attempts answered 500
    assert all(d["attempts"] == 1 and d["lastResponseStatus"] == 500 for d in failed)
    assert all(d["nextAttemptAt"].endswith("Z") for d in failed)

    async def ids(**params: Any) -> list[str]:
        response = await client.get(path(endpoint), params=params, headers=tenant_a.headers)
        assert response.status_code == 200, response.text
        return [d["id"] for d in response.json()["data"]]

    assert await ids(status="pending") == [d["id"] for d in failed]
    assert await ids(status=["succeeded", "pending"]) == newest_first
    assert await ids(status="failed") == []
    assert len(await ids(eventType="customer.created")) == 2
    assert len(await ids(eventType=["customer.created", "invoice.paid"])) == 6
    assert await ids(eventType="invoice.voided") == []

    walked, cursor = [], None
    while True:
        params: dict[str, Any] = {"limit": 4, **({"cursor": cursor} if cursor else {})}
        page = (await client.get(path(endpoint), params=params, headers=tenant_a.headers)).json()
        walked += [d["id"] for d in page["data"]]
        cursor = page["pagination"]["nextCursor"]
        if not page["pagination"]["hasMore"]:
            break
    assert walked == newest_first
    second = await ids(page=2, pageSize=4)
    assert second == newest_first[4:]

    bad = await client.get(path(endpoint), params={"status": "lost"}, headers=tenant_a.headers)
    assert_problem(bad, 422, "validation_failed")
    missing = await client.get(
        f"/api/webhook-endpoints/{uuid.uuid4()}/deliveries", headers=tenant_a.headers
    )
    assert_problem(missing, 404, "webhook_endpoint_not_found")


async def test_a_delivery_shows_its_attempts_and_can_be_sent_again(
    client: httpx.AsyncClient, db: Database, settings: Settings, tenant_a: TenantHandle
) -> None:
    replies = [Reply(410, body=b"gone for now" * 200), Reply(200, body=b"thanks")]

    def answer(_: Received) -> Reply:
        return replies.pop(0) if replies else Reply(204)

    async with serving(Receiver(answer)) as receiver:
        endpoint = await add_endpoint(db, tenant_a.id, receiver.url())
        (event,) = await publish(db, tenant_a.id, [endpoint])
        await deliver(db, settings)
        (row,) = await deliveries(db, endpoint)
        one = path(endpoint, str(row.id))

        shown = (await client.get(one, headers=tenant_a.headers)).json()
        assert {k: shown[k] for k in ("status", "eventId", "lastResponseStatus")} == {
            "status": "failed",
            "eventId": str(event),
            "lastResponseStatus": 410,
        }
        (attempt,) = shown["attempts"]
        assert set(attempt) == {"at", "responseStatus", "durationMs", "error", "responseBody"}
        assert attempt["responseStatus"] == 410
        assert attempt["error"] is None
        assert attempt["responseBody"] == ("gone for now" * 200)[:1024]

        # The 410 disabled the endpoint: no redelivery until it is enabled again.
        refused = await client.post(f"{one}/retry", headers=tenant_a.headers)
        assert_problem(refused, 409, "webhook_endpoint_disabled")
        async with db.write(endpoint.tenant_id) as session:
            await session.execute(
                update(WebhookEndpoint)
                .where(WebhookEndpoint.id == endpoint.id)
                .values(status="enabled", disabled_reason=None)
            )
            await session.commit()
        before = utcnow()
        retried = await client.post(f"{one}/retry", headers=tenant_a.headers)
        assert retried.status_code == 202, retried.text
        assert set(retried.json()) == WIRE
        assert (retried.json()["status"], retried.json()["attempts"]) == ("pending", 1)
        await deliver(db, settings)
        # A delivery that succeeded may be sent again too.
        assert (await client.post(f"{one}/retry", headers=tenant_a.headers)).status_code == 202
        await deliver(db, settings)

    assert receiver.ids() == [str(event)] * 3
    shown = (await client.get(one, headers=tenant_a.headers)).json()
    assert (shown["status"], shown["lastResponseStatus"]) == ("succeeded", 204)
    assert [a["responseStatus"] for a in shown["attempts"]] == [410, 200, 204]
    assert [a["responseBody"] for a in shown["attempts"][1:]] == ["thanks", None]
    assert datetime.fromisoformat(shown["attempts"][1]["at"]) >= before


async def test_ids_that_do_not_belong_together_are_404(
    client: httpx.AsyncClient,
    db: Database,
    settings: Settings,
    tenant_a: TenantHandle,
    tenant_b: TenantHandle,
) -> None:
    mine = await add_endpoint(db, tenant_a.id, "http://127.0.0.1:9/mine")
    sibling = await add_endpoint(db, tenant_a.id, "http://127.0.0.1:9/sibling")
    theirs = await add_endpoint(db, tenant_b.id, "http://127.0.0.1:9/theirs")
    await publish(db, tenant_a.id, [mine, sibling])
    await publish(db, tenant_b.id, [theirs])
    (my_delivery,) = await deliveries(db, mine)
    (their_delivery,) = await deliveries(db, theirs)
    cases = [
        (path(sibling, str(my_delivery.id)), "webhook_delivery_not_found"),
        (path(mine, str(their_delivery.id)), "webhook_delivery_not_found"),
        (path(theirs, str(their_delivery.id)), "webhook_endpoint_not_found"),
        (path(mine, str(uuid.uuid4())), "webhook_delivery_not_found"),
    ]
    for url, code in cases:
        assert_problem(await client.get(url, headers=tenant_a.headers), 404, code)
        assert_problem(await client.post(f"{url}/retry", headers=tenant_a.headers), 404, code)
    listed = await client.get(path(theirs), headers=tenant_a.headers)
    assert_problem(listed, 404, "webhook_endpoint_not_found")
    (unchanged,) = await deliveries(db, theirs)
    assert unchanged == their_delivery


async def test_operators_see_deliveries_and_endpoints_by_status(
    backend: Backend,
    client: httpx.AsyncClient,
    db: Database,
    settings: Settings,
    tenant_a: TenantHandle,
    tenant_b: TenantHandle,
) -> None:
    def answer(request: Received) -> Reply:
        return {"/gone": Reply(410), "/busy": Reply(500)}.get(request.path, Reply(200))

    async with serving(Receiver(answer)) as receiver:
        a = await add_endpoint(db, tenant_a.id, receiver.url("/fine"))
        busy = await add_endpoint(db, tenant_a.id, receiver.url("/busy"))
        gone = await add_endpoint(db, tenant_b.id, receiver.url("/gone"))
        b = await add_endpoint(db, tenant_b.id, receiver.url("/fine"))
        await publish(db, tenant_a.id, [a, busy], count=3)
        await publish(db, tenant_b.id, [gone, b], count=2)
        await deliver(db, settings)
    # a: 3 succeeded; busy: 3 pending; gone: 1 failed + 1 pending (disabled); b: 2 succeeded.
    metrics = (await client.get("/metrics")).text
    for line in (
        'tenvoice_webhook_deliveries{status="succeeded"} 5.0',
        'tenvoice_webhook_deliveries{status="pending"} 4.0',
        'tenvoice_webhook_deliveries{status="failed"} 1.0',
        'tenvoice_webhook_endpoints{status="enabled"} 3.0',
        'tenvoice_webhook_endpoints{status="disabled"} 1.0',
    ):
        assert line in metrics.splitlines(), metrics
    # By how each attempt ended and what the receiver answered: /busy's 500s are retried,
    # /gone's 410 failed the delivery for good.
    assert 'tenvoice_webhook_attempts_total{outcome="retry",response="5xx"}' in metrics
    assert 'tenvoice_webhook_attempts_total{outcome="failed",response="4xx"}' in metrics
    assert 'tenvoice_webhook_attempts_total{outcome="succeeded",response="2xx"}' in metrics

    # `tenvoice jobs` connects with no tenant, as the service role: the counts still span
    # every tenant (row-level security would show it none of their rows).
    run = cli.run("jobs", database_url=backend.url)
    assert run.code == 0, run.stderr
    lines = run.stdout.splitlines()
    assert "webhook deliveries: pending=4 succeeded=5 failed=1" in lines, run.stdout
    assert "webhook endpoints: enabled=3 disabled=1" in lines, run.stdout
