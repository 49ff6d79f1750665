"""What becomes of failed attempts: retries on the schedule, Retry-After, 8 attempts then
`failed`, 3xx as failures, answers kept to 1 KiB, endpoints disabled (410, five days of
failures), and the SSRF guard at connect time."""

import email.utils
import uuid
from datetime import UTC, datetime, timedelta

from prometheus_client import REGISTRY
from sqlalchemy import update

from tenvoice.config import Settings
from tenvoice.platform.db import Database, utcnow
from tenvoice.webhooks import fanout, retry_policy, sender
from tenvoice.webhooks.models import WebhookEndpoint
from tenvoice.webhooks.ssrf import check_url
from tests.conftest import TenantHandle
from tests.live import eventually, free_socket
from tests.webhooks.deliveries import (
    Endpoint,
    add_endpoint,
    attempts,
    deliveries,
    delivery_settings,
    delivery_worker,
    endpoint_row,
    events_of,
    publish,
    running,
)
from tests.webhooks.receivers import Received, Receiver, Reply, serving, verified

# For tests that look at the state after one attempt: no retry comes due meanwhile.
NO_RETRY_SOON = (60.0,) * 7
RESPONSE_CLASSES = ("2xx", "3xx", "4xx", "5xx", "none")


def attempts_counted(outcome: str, responses: tuple[str, ...] = RESPONSE_CLASSES) -> float:
    return sum(
        REGISTRY.get_sample_value(
            "tenvoice_webhook_attempts_total", {"outcome": outcome, "response": response}
        )
        or 0.0
        for response in responses
    )


async def test_a_delivery_that_keeps_failing_is_tried_8_times_on_the_schedule_then_failed(
    db: Database, settings: Settings, tenant_a: TenantHandle
) -> None:
    before = {outcome: attempts_counted(outcome) for outcome in ("retry", "failed")}
    before_5xx = attempts_counted("retry", ("5xx",))
    async with serving(Receiver(lambda _: Reply(500, body=b"down"))) as receiver:
        endpoint = await add_endpoint(db, tenant_a.id, receiver.url())
        (event,) = await publish(db, tenant_a.id, [endpoint])
        async with delivery_worker(db, delivery_settings(settings)) as worker, running(worker):

            async def failed() -> bool:
                return bool((await deliveries(db, endpoint))[0].status == "failed")

            await eventually(failed, timeout=20)

    assert receiver.ids() == [str(event)] * 8
    for request in receiver.received:
        verified(endpoint.secret, request)
    gaps = [b.at - a.at for a, b in zip(receiver.received, receiver.received[1:], strict=False)]
    for gap, wait in zip(gaps, delivery_settings(settings).webhook_retry_schedule, strict=True):
        assert gap >= wait * 0.8 - 0.01, gaps
    (row,) = await deliveries(db, endpoint)
    assert (row.attempts, row.next_attempt_at, row.last_response_status) == (8, None, 500)
    tries = await attempts(db, endpoint, row.id)
    assert [t.number for t in tries] == list(range(1, 9))
    assert {(t.response_status, t.response_body) for t in tries} == {(500, "down")}
    assert attempts_counted("retry") - before["retry"] == 7
    assert attempts_counted("failed") - before["failed"] == 1
    # Every one of them answered 500.
    assert attempts_counted("retry", ("5xx",)) - before_5xx == 7
    ep = await endpoint_row(db, endpoint)
    assert (ep.status, ep.failed_attempts) == ("enabled", 8)
    assert ep.failing_since == tries[0].at


async def test_retry_after_on_429_and_503_is_honoured_when_longer_up_to_a_day(
    db: Database, settings: Settings, tenant_a: TenantHandle
) -> None:
    in_3s = email.utils.format_datetime(datetime.now(UTC) + timedelta(seconds=3), usegmt=True)
    answers = {
        "/seconds": Reply(429, {"retry-after": "2"}),
        "/date": Reply(503, {"retry-after": in_3s}),
        "/not-on-500": Reply(500, {"retry-after": "60"}),
        "/shorter": Reply(429, {"retry-after": "0"}),
        "/too-long": Reply(429, {"retry-after": "999999"}),
        "/garbage": Reply(503, {"retry-after": "soon"}),
    }
    seen: dict[str, int] = {}

    def answer(request: Received) -> Reply:
        seen[request.path] = seen.get(request.path, 0) + 1
        return answers[request.path] if seen[request.path] == 1 else Reply(200)

    async with serving(Receiver(answer)) as receiver:
        endpoints: dict[str, Endpoint] = {}
        for path in answers:
            endpoints[path] = await add_endpoint(db, tenant_a.id, receiver.url(path))
        await publish(db, tenant_a.id, list(endpoints.values()))
        one_second = delivery_settings(settings, webhook_retry_schedule=(1.0,) * 7)
        async with delivery_worker(db, one_second) as worker:
            await worker.drain()
            waits = {}
            for path, endpoint in endpoints.items():
                (row,) = await deliveries(db, endpoint)
                assert (row.status, row.attempts) == ("pending", 1)
                waits[path] = (row.next_attempt_at - row.last_attempt_at).total_seconds()
            assert 2 <= waits["/seconds"] <= 2.01
            assert 1.5 <= waits["/date"] <= 3.01
            assert 24 * 3600 - 1 <= waits["/too-long"] <= 24 * 3600
            for path in ("/not-on-500", "/shorter", "/garbage"):
                assert 0.8 <= waits[path] <= 1.2, (path, waits)

            # Delivered again once the wait is over, not before.
            seconds = endpoints["/seconds"]
            async with running(worker):

                async def delivered() -> bool:
                    return bool((await deliveries(db, seconds))[0].status == "succeeded")

                await eventually(delivered, timeout=10)
    first, second = [r for r in receiver.received if r.path == "/seconds"]
    assert second.at - first.at >= 2 - 0.05


async def test_a_redirect_is_a_failed_attempt_and_is_not_followed(
    db: Database, settings: Settings, tenant_a: TenantHandle
) -> None:
    def answer(request: Received) -> Reply:
        if request.path == "/moved":
            return Reply(302, {"location": f"{receiver.base_url}/target"})
        return Reply(200)

    async with serving(Receiver(answer)) as receiver:
        endpoint = await add_endpoint(db, tenant_a.id, receiver.url("/moved"))
        await publish(db, tenant_a.id, [endpoint])
        later = delivery_settings(settings, webhook_retry_schedule=NO_RETRY_SOON)
        async with delivery_worker(db, later) as worker:
            await worker.drain()
    assert [r.path for r in receiver.received] == ["/moved"]
    (row,) = await deliveries(db, endpoint)
    assert (row.status, row.attempts, row.last_response_status) == ("pending", 1, 302)
    assert row.next_attempt_at is not None


async def test_what_the_receiver_answers_is_kept_to_1_kib(
    db: Database, settings: Settings, tenant_a: TenantHandle
) -> None:
    big = b"0123456789" * 200_000  # 2 MB, streamed in chunks: read only as far as 1 KiB
    async with serving(Receiver(lambda _: Reply(200, body=big))) as receiver:
        endpoint = await add_endpoint(db, tenant_a.id, receiver.url())
        await publish(db, tenant_a.id, [endpoint])
        async with delivery_worker(db, delivery_settings(settings)) as worker:
            await worker.drain()
    (row,) = await deliveries(db, endpoint)
    assert row.status == "succeeded"
    (attempt,) = await attempts(db, endpoint, row.id)
    assert attempt.response_body == big[:1024].decode()


async def test_410_disables_the_endpoint_at_once_and_records_it_as_an_event(
    db: Database, settings: Settings, tenant_a: TenantHandle
) -> None:
    def answer(request: Received) -> Reply:
        return Reply(410) if len(receiver.received) == 3 else Reply(200)

    async with serving(Receiver(answer)) as receiver:
        endpoint = await add_endpoint(db, tenant_a.id, receiver.url())
        events = await publish(db, tenant_a.id, [endpoint], count=5)
        async with delivery_worker(db, delivery_settings(settings)) as worker:
            await worker.drain()
            assert receiver.ids() == [str(e) for e in events[:3]]
            rows = await deliveries(db, endpoint)
            assert [(r.status, r.attempts) for r in rows] == [
                ("succeeded", 1),
                ("succeeded", 1),
                ("failed", 1),
                ("pending", 0),
                ("pending", 0),
            ]
            ep = await endpoint_row(db, endpoint)
            assert (ep.status, ep.disabled_reason) == ("disabled", retry_policy.GONE_REASON)
            assert ep.dispatch_owner is None
            (disabled,) = await events_of(db, endpoint.tenant_id, "webhook_endpoint.disabled")
            assert disabled.entity_id == endpoint.id
            assert disabled.data["reason"] == retry_policy.GONE_REASON

            # Disabled, it is sent nothing, even when woken.
            await publish(db, tenant_a.id, [endpoint])
            await worker.drain()
            assert len(receiver.received) == 3

            # Enabled again and woken (what re-enabling does), its waiting deliveries go out
            # in order.
            async with db.write(endpoint.tenant_id) as session:
                await session.execute(
                    update(WebhookEndpoint)
                    .where(WebhookEndpoint.id == endpoint.id)
                    .values(status="enabled", disabled_reason=None)
                )
                fanout.wake(session, endpoint.tenant_id, endpoint.id)
                await session.commit()
            await worker.drain()
    rows = await deliveries(db, endpoint)
    assert receiver.ids()[3:] == [str(r.event_id) for r in rows[3:]]
    assert [r.status for r in rows] == ["succeeded"] * 2 + ["failed"] + ["succeeded"] * 3


async def test_an_endpoint_failing_for_5_days_and_10_attempts_is_disabled(
    db: Database, settings: Settings, tenant_a: TenantHandle
) -> None:
    def answer(request: Received) -> Reply:
        return Reply(200) if request.path == "/recovers" else Reply(500)

    six_days_ago = utcnow() - timedelta(days=6)
    async with serving(Receiver(answer)) as receiver:
        cases = {
            # (failing since, failed attempts) before this attempt
            "/fails": (six_days_ago, 9),
            "/recovers": (six_days_ago, 30),
            "/not-five-days": (utcnow() - timedelta(days=4), 50),
            "/few-attempts": (six_days_ago, 3),
            "/first-failure": (None, 0),
        }
        endpoints = {
            path: await add_endpoint(
                db, tenant_a.id, receiver.url(path), failing_since=since, failed_attempts=count
            )
            for path, (since, count) in cases.items()
        }
        await publish(db, tenant_a.id, list(endpoints.values()))
        later = delivery_settings(settings, webhook_retry_schedule=NO_RETRY_SOON)
        async with delivery_worker(db, later) as worker:
            await worker.drain()

    rows = {path: await endpoint_row(db, endpoint) for path, endpoint in endpoints.items()}
    assert (rows["/fails"].status, rows["/fails"].disabled_reason) == (
        "disabled",
        retry_policy.FAILING_REASON,
    )
    assert (rows["/recovers"].failing_since, rows["/recovers"].failed_attempts) == (None, 0)
    assert rows["/not-five-days"].failed_attempts == 51
    assert rows["/few-attempts"].failed_attempts == 4
    first = await deliveries(db, endpoints["/first-failure"])
    assert rows["/first-failure"].failing_since == first[0].last_attempt_at
    assert rows["/first-failure"].failed_attempts == 1
    enabled = [path for path, row in rows.items() if row.status == "enabled"]
    assert enabled == ["/recovers", "/not-five-days", "/few-attempts", "/first-failure"]
    disabled = await events_of(db, uuid.UUID(tenant_a.id), "webhook_endpoint.disabled")
    assert [event.entity_id for event in disabled] == [endpoints["/fails"].id]


async def test_a_name_that_turns_private_after_it_was_saved_is_refused_at_connect(
    db: Database, settings: Settings, tenant_a: TenantHandle
) -> None:
    answers = {"rebinding.example.test": ["93.184.216.34"]}

    async def resolver(host: str, port: int) -> list[str]:
        return answers[host]

    async with serving(Receiver()) as receiver:
        port = receiver.base_url.rsplit(":", 1)[1]
        url = f"https://rebinding.example.test:{port}/hooks"
        # Saved while the name answered with a public address...
        assert await check_url(url, allow_private=False, resolver=resolver) == url
        endpoint = await add_endpoint(db, tenant_a.id, url)
        # ...which now answers with loopback, or the cloud metadata service.
        for address in ("127.0.0.1", "169.254.169.254"):
            answers["rebinding.example.test"] = ["93.184.216.34", address]
            await publish(db, tenant_a.id, [endpoint])
        public_only = delivery_settings(
            settings, webhook_allow_private=False, webhook_retry_schedule=NO_RETRY_SOON
        )
        async with delivery_worker(db, public_only, resolver=resolver) as worker:
            await worker.drain()
    assert receiver.received == []
    for row in await deliveries(db, endpoint):
        (attempt,) = await attempts(db, endpoint, row.id)
        assert (attempt.response_status, attempt.error) == (None, sender.REFUSED)
        assert (row.status, row.attempts) == ("pending", 1)


async def test_a_delivery_connects_to_the_resolved_address_and_names_the_host(
    db: Database, settings: Settings, tenant_a: TenantHandle
) -> None:
    async def resolver(host: str, port: int) -> list[str]:
        assert host == "hooks.example.test"
        return ["127.0.0.1"]

    async with serving(Receiver()) as receiver:
        port = receiver.base_url.rsplit(":", 1)[1]
        endpoint = await add_endpoint(db, tenant_a.id, f"http://hooks.example.test:{port}/in")
        await publish(db, tenant_a.id, [endpoint])
        async with delivery_worker(db, delivery_settings(settings), resolver=resolver) as worker:
            await worker.drain()
    (request,) = receiver.received
    assert (request.path, request.headers["host"]) == ("/in", f"hooks.example.test:{port}")
    verified(endpoint.secret, request)


async def test_a_receiver_that_is_not_listening_is_a_failed_attempt(
    db: Database, settings: Settings, tenant_a: TenantHandle
) -> None:
    with free_socket() as closed:  # bound, never listening: connections are refused
        port = closed.getsockname()[1]
        endpoint = await add_endpoint(db, tenant_a.id, f"http://127.0.0.1:{port}/hooks")
        await publish(db, tenant_a.id, [endpoint])
        later = delivery_settings(settings, webhook_retry_schedule=NO_RETRY_SOON)
        async with delivery_worker(db, later) as worker:
            await worker.drain()
    (row,) = await deliveries(db, endpoint)
    assert (row.status, row.attempts, row.last_response_status) == ("pending", 1, None)
    (attempt,) = await attempts(db, endpoint, row.id)
    assert attempt.response_status is None
    assert attempt.error.startswith("ConnectError"), attempt.error
