"""The log format API.md promises, through the ASGI app: one JSON object a line with the
request's fields, one access line per request naming its route template, trace ids from the
active span, job fields on a worker's lines, and no secret in any of it."""

import json
import logging
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Annotated, Any

import httpx
import pytest
from fastapi import Depends, FastAPI
from opentelemetry import trace
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

from tenvoice.config import Settings
from tenvoice.main import create_app
from tenvoice.platform import logs
from tenvoice.platform.db import Database
from tenvoice.platform.outbox import Job
from tenvoice.platform.tenancy import RequestContext
from tenvoice.platform.worker import JobContext
from tenvoice.tenants.auth import tenant_context
from tests.conftest import TenantHandle, make_customer, make_invoice
from tests.platform.test_outbox import add_job, make_worker

Line = dict[str, Any]


class Lines(logging.Handler):
    """What the service would write, as parsed JSON objects."""

    def __init__(self) -> None:
        super().__init__(logging.NOTSET)
        self.setFormatter(logs.formatter("json"))
        self.raw: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.raw.append(self.format(record))

    @property
    def parsed(self) -> list[Line]:
        return [json.loads(line) for line in self.raw]

    def access(self) -> list[Line]:
        return [line for line in self.parsed if line["logger"] == "tenvoice.access"]


@pytest.fixture
def lines() -> Iterator[Lines]:
    handler = Lines()
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield handler
    finally:
        root.removeHandler(handler)


test_log = logging.getLogger("tenvoice.test")
AsTenant = Annotated[RequestContext, Depends(tenant_context)]


@pytest.fixture
def app(app: FastAPI) -> FastAPI:
    """The app with two routes of a tenant's that log and that fail."""

    async def logs_a_line(context: AsTenant) -> dict[str, str]:
        test_log.warning("inside a tenant's request")
        return {}

    async def fails(context: AsTenant) -> dict[str, str]:
        raise RuntimeError("something broke")

    app.add_api_route("/api/test-logs/line", logs_a_line)
    app.add_api_route("/api/test-logs/failure", fails)
    return app


def is_rfc3339_utc(value: str) -> bool:
    return value.endswith("Z") and datetime.fromisoformat(value).utcoffset() == UTC.utcoffset(None)


async def test_a_request_logs_json_lines_with_its_request_id_and_tenant(
    client: httpx.AsyncClient, tenant_a: TenantHandle, lines: Lines
) -> None:
    response = await client.get("/api/test-logs/line", headers=tenant_a.headers)
    assert response.status_code == 200, response.text
    request_id = response.headers["x-request-id"]

    mine = [line for line in lines.parsed if line.get("request_id") == request_id]
    [app_line] = [line for line in mine if line["logger"] == "tenvoice.test"]
    assert app_line["event"] == "inside a tenant's request"
    assert app_line["level"] == "warning"
    assert app_line["tenant_id"] == tenant_a.id
    assert is_rfc3339_utc(app_line["timestamp"])
    [access] = [line for line in mine if line["logger"] == "tenvoice.access"]
    assert access["event"] == "request"
    assert access["level"] == "info"
    assert is_rfc3339_utc(access["timestamp"])
    assert access["tenant_id"] == tenant_a.id
    assert access["method"] == "GET"
    assert access["route"] == "/api/test-logs/line"
    assert access["status"] == 200
    assert isinstance(access["duration_ms"], float)
    assert access["duration_ms"] >= 0
    assert access["client"] == "127.0.0.1"
    # The leading fields first, for whoever reads the raw line.
    assert list(access)[:4] == ["timestamp", "level", "event", "logger"]


async def test_every_request_is_one_access_line_naming_its_route_template(
    client: httpx.AsyncClient, tenant_a: TenantHandle, admin: dict[str, str], lines: Lines
) -> None:
    customer = await make_customer(client, tenant_a)
    invoice = await make_invoice(client, tenant_a, customer["id"], finalize=True)
    hosted_url: str = invoice["hostedUrl"]
    token = hosted_url.rsplit("/", 1)[1]
    lines.raw.clear()

    requests = [
        client.get(hosted_url),
        client.get(f"{hosted_url}/pdf"),
        client.get("/api/invoices?pageSize=5&status=open", headers=tenant_a.headers),
        client.get(f"/api/invoices/{invoice['id']}", headers=tenant_a.headers),
        client.get("/api/tenants", headers=admin),
        client.get("/no/such/route/x-secret-path"),
        client.delete("/api/tenants", headers=admin),
        client.get("/api/invoices", headers={"Authorization": "Bearer tv_sk_not-a-key"}),
        # The second is answered by the idempotency layer, before any route runs.
        *[
            client.post(
                "/api/customers",
                json={"name": "Replayed", "email": "replayed@example.com"},
                headers={**tenant_a.headers, "Idempotency-Key": "access-line-replay"},
            )
            for _ in range(2)
        ],
    ]
    responses = [await request for request in requests]
    assert responses[-1].headers["idempotent-replayed"] == "true"

    access = lines.access()
    assert len(access) == len(requests)
    for response, line in zip(responses, access, strict=True):
        assert line["request_id"] == response.headers["x-request-id"]
        assert line["status"] == response.status_code
    assert [(line["method"], line["route"]) for line in access] == [
        ("GET", "/hosted/invoices/{token}"),
        ("GET", "/hosted/invoices/{token}/pdf"),
        ("GET", "/api/invoices"),
        ("GET", "/api/invoices/{invoice_id}"),
        ("GET", "/api/tenants"),
        ("GET", None),
        ("DELETE", "/api/tenants"),
        ("GET", "/api/invoices"),
        ("POST", "/api/customers"),
        ("POST", "/api/customers"),
    ]
    # A tenant's requests say whose; the public page, before any credential, does not.
    assert [line.get("tenant_id") for line in access[:4]] == [None, None, tenant_a.id, tenant_a.id]
    everything = "\n".join(lines.raw)
    for never in (token, "pageSize", "x-secret-path", tenant_a.key, "tv_sk_not-a-key"):
        assert never not in everything


async def test_an_unhandled_error_logs_its_request_and_tenant_and_one_access_line(
    app: FastAPI, tenant_a: TenantHandle, lines: Lines
) -> None:
    # As uvicorn serves it: the 500 goes out and the error stays in the log.
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://tenvoice.test") as client:
        response = await client.get("/api/test-logs/failure", headers=tenant_a.headers)
    assert response.status_code == 500
    request_id = response.headers["x-request-id"]

    [error] = [line for line in lines.parsed if line["logger"] == "tenvoice.http"]
    assert error["level"] == "error"
    assert error["request_id"] == request_id
    assert error["tenant_id"] == tenant_a.id
    assert "RuntimeError: something broke" in error["exception"]
    [access] = lines.access()
    assert (access["status"], access["request_id"]) == (500, request_id)
    assert access["tenant_id"] == tenant_a.id


async def test_the_admin_acting_as_a_tenant_is_logged_as_that_tenant(
    client: httpx.AsyncClient, tenant_a: TenantHandle, admin: dict[str, str], lines: Lines
) -> None:
    headers = {**admin, "X-Tenant-Id": tenant_a.id}
    response = await client.get("/api/customers", headers=headers)
    assert response.status_code == 200, response.text
    [access] = lines.access()
    assert access["tenant_id"] == tenant_a.id


TRACE_ID = 0x0AF7651916CD43DD8448EB211C80319C
SPAN_ID = 0x00F067AA0BA902B7


def active_span() -> NonRecordingSpan:
    return NonRecordingSpan(
        SpanContext(TRACE_ID, SPAN_ID, is_remote=False, trace_flags=TraceFlags(1))
    )


async def test_lines_carry_the_active_spans_trace_id_and_none_without_one(
    client: httpx.AsyncClient, tenant_a: TenantHandle, lines: Lines
) -> None:
    with trace.use_span(active_span()):
        test_log.info("traced")
        # The in-process transport runs the app in this task, inside the span.
        await client.get("/api/test-logs/line", headers=tenant_a.headers)
    test_log.info("not traced")

    traced = [line for line in lines.parsed if "trace_id" in line]
    assert {line["trace_id"] for line in traced} == {"0af7651916cd43dd8448eb211c80319c"}
    assert {line["span_id"] for line in traced} == {"00f067aa0ba902b7"}
    assert {line["event"] for line in traced} == {"traced", "inside a tenant's request", "request"}
    [untraced] = [line for line in lines.parsed if line["event"] == "not traced"]
    assert "trace_id" not in untraced


async def test_a_jobs_lines_carry_its_id_kind_and_tenant(
    db: Database, settings: Settings, lines: Lines
) -> None:
    tenant_id = uuid.uuid4()

    async def logs_then_fails(job: Job, context: JobContext) -> None:
        test_log.info("working on it")
        raise ValueError("receiver down")

    job_id = await add_job(db, "test.logging", tenant_id=tenant_id)
    async with make_worker(db, settings, {"test.logging": logs_then_fails}) as worker:
        assert await worker.drain() == 1

    mine = [line for line in lines.parsed if line.get("job_id") == str(job_id)]
    assert [(line["logger"], line["level"]) for line in mine] == [
        ("tenvoice.test", "info"),
        ("tenvoice.worker", "warning"),
    ]
    for line in mine:
        assert line["job_kind"] == "test.logging"
        assert line["tenant_id"] == str(tenant_id)
        assert "request_id" not in line
    assert "receiver down" in mine[1]["event"]


def render(fmt: logs.Format, message: str, *args: object, **extra: object) -> str:
    record = logging.LogRecord("tenvoice.test", logging.INFO, __file__, 1, message, args, None)
    record.__dict__.update(extra)
    return logs.formatter(fmt).format(record)


def test_the_console_format_is_readable_text() -> None:
    line = render("console", "hello %s", "world", route="/api/invoices")
    assert not line.startswith("{")
    assert "hello world" in line
    assert "info" in line
    assert "route=/api/invoices" in line
    assert "tenvoice.test" in line


def test_the_format_is_json_unless_stdout_is_a_terminal(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def terminals(stdout: bool, stderr: bool) -> None:
        monkeypatch.setattr("sys.stdout.isatty", lambda: stdout)
        monkeypatch.setattr("sys.stderr.isatty", lambda: stderr)

    terminals(True, True)
    assert logs.chosen_format(None) == "console"
    assert logs.chosen_format("json") == "json"
    terminals(False, True)
    assert logs.chosen_format(None) == "json"
    terminals(True, False)
    assert logs.chosen_format(None) == "console"
    terminals(False, False)
    assert logs.chosen_format("console") == "console"


@pytest.mark.parametrize(
    ("written", "logged"),
    [
        ("key tv_sk_AbC123-_xyz rejected", "key tv_sk_*** rejected"),
        ("admin tv_admin_Zz9_-q", "admin tv_admin_***"),
        ("secret whsec_MfKQ9r8+GKYq/rT=", "secret whsec_***"),
        ("Authorization: Bearer abc.def-123", "Authorization: Bearer ***"),
        ("bearer xyz", "bearer ***"),
        ("GET /hosted/invoices/Q2xhdWRl-_x/pdf", "GET /hosted/invoices/***/pdf"),
        ("POST https://ada:pa55@hooks.example/in", "POST https://***@hooks.example/in"),
        ("route /hosted/invoices/{token}", "route /hosted/invoices/{token}"),
        ("nothing secret here", "nothing secret here"),
    ],
)
def test_the_backstop_redacts_what_slips_through(written: str, logged: str) -> None:
    assert logs.redact(written) == logged
    assert json.loads(render("json", "%s", written))["event"] == logged


def test_the_backstop_redacts_tracebacks_and_extra_fields() -> None:
    try:
        raise ValueError("bad key tv_sk_AbC123")
    except ValueError:
        record = logging.LogRecord(
            "tenvoice.test", logging.ERROR, __file__, 1, "failed", (), sys.exc_info()
        )
    record.__dict__["url"] = "https://u:p@example.com/"
    line = json.loads(logs.formatter("json").format(record))
    assert "tv_sk_AbC123" not in line["exception"]
    assert "tv_sk_***" in line["exception"]
    assert line["url"] == "https://***@example.com/"


def test_creating_an_app_leaves_the_callers_logging_alone(settings: Settings) -> None:
    root = logging.getLogger()
    before = (list(root.handlers), root.level, logging.getLogger("uvicorn.error").handlers[:])
    create_app(settings)
    after = (list(root.handlers), root.level, logging.getLogger("uvicorn.error").handlers[:])
    assert after == before


async def test_caplog_still_sees_the_services_records(
    client: httpx.AsyncClient, tenant_a: TenantHandle, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO):
        await client.get("/api/test-logs/line", headers=tenant_a.headers)
    assert [(r.name, r.getMessage()) for r in caplog.records] == [
        ("tenvoice.test", "inside a tenant's request"),
        ("tenvoice.access", "request"),
    ]
