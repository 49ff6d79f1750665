import asyncio
import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from sqlalchemy import inspect, text

from tenvoice import __version__
from tenvoice.config import Settings, ensure_embedded_secrets, get_settings, require_secrets_key
from tenvoice.credits.routes import balances as balance_transactions_router
from tenvoice.credits.routes import credit_notes as credit_notes_router
from tenvoice.credits.routes import refunds_router
from tenvoice.customers.routes import router as customers_router
from tenvoice.events.routes import router as events_router
from tenvoice.handlers import EVENT_HANDLERS, JOB_HANDLERS, STORED_COUNTS
from tenvoice.invoices.links import LinkTokens
from tenvoice.invoices.routes import public_router as hosted_invoices_router
from tenvoice.invoices.routes import router as invoices_router
from tenvoice.payments.routes import router as payments_router
from tenvoice.payments.routes import webhook_router
from tenvoice.platform import logs, tracing
from tenvoice.platform.access_log import AccessLogMiddleware
from tenvoice.platform.db import Database
from tenvoice.platform.errors import DatabaseNotMigrated, DatabaseUnreachable
from tenvoice.platform.http import BodyGuardMiddleware, RequestIdMiddleware, install_error_handlers
from tenvoice.platform.idempotency import UNKEYED_PREFIX, IdempotencyMiddleware
from tenvoice.platform.messages import EventHandlers
from tenvoice.platform.metrics_endpoint import metrics_route, watch_pools
from tenvoice.platform.metrics_http import MetricsMiddleware
from tenvoice.platform.metrics_process import forget_this_process
from tenvoice.platform.migrate import schema_is_behind
from tenvoice.platform.ratelimit import UNLIMITED as RATE_UNLIMITED
from tenvoice.platform.ratelimit import Budgets, RateLimitMiddleware
from tenvoice.platform.ratelimit_store import open_counters
from tenvoice.platform.schemas import problem_responses
from tenvoice.platform.strict_input import StrictInputMiddleware
from tenvoice.platform.worker import Worker
from tenvoice.tenants.auth import idempotency_scope, rate_limit_caller
from tenvoice.tenants.keycache import ApiKeyCache
from tenvoice.tenants.routes import router as tenants_router
from tenvoice.webhooks import models as _webhook_models  # noqa: F401 (on the metadata)
from tenvoice.webhooks.delivery_routes import router as webhook_deliveries_router
from tenvoice.webhooks.routes import router as webhook_endpoints_router
from tenvoice.webhooks.secrets import SecretBox

log = logging.getLogger("tenvoice")


def create_app(
    settings: Settings | None = None,
    *,
    db: Database | None = None,
    event_handlers: EventHandlers | None = None,
) -> FastAPI:
    settings = settings or get_settings()
    # Before the app exists: each `serve --workers N` process builds its own.
    tracing.configure()
    ensure_embedded_secrets(settings)
    secrets_key = require_secrets_key(settings.secrets_key)
    link_tokens = LinkTokens(secrets_key)
    budgets = Budgets(settings)
    rate_limit_counters = open_counters(settings.redis_url, settings.redis_key_prefix)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        owned = db is None
        app.state.db = db or Database(settings.database_url, pool_size=settings.database_pool_size)
        tracing.instrument_engines(app.state.db.write_engine, app.state.db.read_engine)
        watch_pools(app.state.db)
        app.state.api_keys = ApiKeyCache()
        await app.state.api_keys.start(app.state.db.url)
        worker = None
        if settings.worker:
            worker = Worker(app.state.db, settings, JOB_HANDLERS, app.state.event_handlers)
            stop = asyncio.Event()
            running = asyncio.create_task(worker.run(stop), name="outbox-worker")
        try:
            yield
        finally:
            await app.state.api_keys.close()
            if worker is not None:
                stop.set()
                await running
                await worker.close()
            if owned:
                await app.state.db.dispose()
            await rate_limit_counters.close()
            tracing.shutdown()
            # Its connections in use no longer count; its counters stay in the sum.
            forget_this_process()

    app = FastAPI(
        title="tenvoice",
        version=__version__,
        summary="Multi-tenant invoicing API",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.link_tokens = link_tokens
    app.state.rate_limit_counters = rate_limit_counters
    app.state.webhook_secrets = SecretBox(secrets_key)
    app.state.event_handlers = EVENT_HANDLERS if event_handlers is None else event_handlers
    if db is not None:
        app.state.db = db
    install_error_handlers(app)
    # Innermost first: the idempotency layer sees a body the guard has already sized.
    app.add_middleware(IdempotencyMiddleware, scope_of=idempotency_scope)
    app.add_middleware(StrictInputMiddleware)
    app.add_middleware(BodyGuardMiddleware, max_bytes=settings.max_body_bytes)
    # Inside the request id (a 429 carries it) and the metrics (429s are counted), before
    # anything reads the body: a refused request costs one counter round trip and no more.
    app.add_middleware(
        RateLimitMiddleware,
        budgets=budgets,
        counters=rate_limit_counters,
        caller_of=rate_limit_caller,
    )
    app.add_middleware(MetricsMiddleware)
    # Inside the request id, which its line carries; outside every layer that may answer on
    # its own (body guard, strict input, idempotency replays), so each request is one line
    # with the status its client saw.
    app.add_middleware(AccessLogMiddleware)
    app.add_middleware(RequestIdMiddleware)
    for router in (
        tenants_router,
        customers_router,
        invoices_router,
        payments_router,
        events_router,
        webhook_router,
        webhook_endpoints_router,
        hosted_invoices_router,
        webhook_deliveries_router,
        credit_notes_router,
        refunds_router,
        balance_transactions_router,
    ):
        app.include_router(router)
    _operations(app)
    _openapi_problems_only_as_problem_json(app)
    tracing.instrument_app(app)
    return app


def create_served_app() -> FastAPI:
    """The app as `tenvoice serve` builds it, once in each worker process.

    What exists by now (modules, mappers, compiled schemas, the app) lives as long as the
    process. Freezing it takes it out of the collector's view: a full collection walked those
    ~140k objects in 40-70 ms of CPU, a pause every request in flight would wait out; frozen,
    about 10k objects are left to walk.
    """
    # A worker process of `serve --workers N` starts afresh: uvicorn has applied the log
    # config to the standard library, this points structlog's own loggers at it.
    logs.configure_structlog()
    app = create_app()
    gc.collect()
    gc.freeze()
    return app


def _openapi_problems_only_as_problem_json(app: FastAPI) -> None:
    """Error responses are application/problem+json only (FastAPI also lists a JSON copy),
    every authenticated POST documents the Idempotency-Key header its middleware reads, and
    every rate-limited operation its 429."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = generate()  # FastAPI caches it in app.openapi_schema; trimmed in place once
        for path, operations in schema["paths"].items():
            for method, operation in operations.items():
                if path not in RATE_UNLIMITED:
                    limited = problem_responses(429)[429]
                    operation.setdefault("responses", {}).setdefault("429", _problem_json(limited))
                for status, response in operation.get("responses", {}).items():
                    content = response.get("content", {})
                    if status >= "400" and "application/problem+json" in content:
                        content.pop("application/json", None)
                if method == "post" and not path.startswith(UNKEYED_PREFIX):
                    operation.setdefault("parameters", []).append(_IDEMPOTENCY_KEY)
                    # A key may answer for itself: in flight or not replayable (409), reused
                    # with another request (422), whatever the route's own answers are.
                    responses = operation.setdefault("responses", {})
                    for status, problem in problem_responses(409, 422).items():
                        responses.setdefault(str(status), _problem_json(problem))
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def _problem_json(response: dict[str, Any]) -> dict[str, Any]:
    return {"description": response["description"], "content": response["content"]}


_IDEMPOTENCY_KEY = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "schema": {"type": "string", "minLength": 1, "maxLength": 255},
    "description": "Retries with the same key and body return the first response "
    "(Idempotent-Replayed: true) for at least 24 hours; the same key with another body is "
    "422 idempotency_key_reused, a retry while the first runs is 409 "
    "idempotency_key_in_flight, and a retry of an answer that showed a secret once is 409 "
    "idempotency_key_secret_not_replayable.",
}


def _operations(app: FastAPI) -> None:
    @app.get("/healthz", tags=["operations"])
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", tags=["operations"], responses=problem_responses(503))
    async def readyz() -> dict[str, str]:
        db: Database = app.state.db
        try:
            async with db.lookup() as connection:
                # Asked first, so that a database that answers but was never migrated is told
                # apart from one that does not answer.
                migrated = await connection.run_sync(
                    lambda sync: inspect(sync).has_table("alembic_version")
                )
                version = (
                    await connection.scalar(text("SELECT version_num FROM alembic_version"))
                    if migrated
                    else None
                )
        except Exception as exc:
            log.warning("readiness check failed: %s", type(exc).__name__)
            raise DatabaseUnreachable("The database does not answer.") from None
        if schema_is_behind(version):
            raise DatabaseNotMigrated(
                f"The database schema is at {version or 'no revision'}; "
                "run `tenvoice migrate` first."
            )
        return {"status": "ready"}

    app.add_api_route(
        "/metrics", metrics_route(STORED_COUNTS, list(JOB_HANDLERS)), include_in_schema=False
    )
