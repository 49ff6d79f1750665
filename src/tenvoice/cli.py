"""`tenvoice migrate | serve | worker | jobs | doctor`: what automation and the README rely on."""

import argparse
import asyncio
import gc
import os
import signal
import sys
from typing import Any

import uvloop
from pydantic import ValidationError

from tenvoice.config import (
    Settings,
    SettingsError,
    ensure_embedded_secrets,
    get_settings,
    require_secrets_key,
)
from tenvoice.platform import logs, metrics_process, preflight


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tenvoice", description="Multi-tenant invoicing API")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("migrate", help="apply database migrations")
    serve = sub.add_parser("serve", help="run the HTTP API (and the outbox worker)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--workers", type=int, default=1, help="API worker processes")
    sub.add_parser("worker", help="run the outbox worker on its own")
    jobs = sub.add_parser("jobs", help="outbox jobs by status, and the dead ones")
    jobs.add_argument("--retry", metavar="JOB_ID", help="send a dead job back to the queue")
    sub.add_parser("doctor", help="configuration (secrets masked) and what the service reaches")
    args = parser.parse_args(argv)
    problem: Exception
    try:
        settings = get_settings()
        log_config = logs.setup(settings.log_format, settings.log_level)
        return _run(args, log_config)
    except ValidationError as exc:
        problem = preflight.settings_error(exc)
    except (preflight.StartupError, SettingsError) as exc:
        problem = exc
    # One sentence, no traceback: what is wrong and what fixes it.
    print(f"tenvoice {args.command}: {problem}", file=sys.stderr, flush=True)
    return 1


def _run(args: argparse.Namespace, log_config: dict[str, Any]) -> int:
    if args.command == "migrate":
        return _migrate()
    if args.command == "worker":
        preflight.database_ready(get_settings().database_url)
        # The event loop the API runs on under uvicorn: its sockets cost a delivery a
        # fraction of what the standard loop's do.
        return uvloop.run(_worker())
    if args.command == "jobs":
        from tenvoice.handlers import STORED_COUNTS
        from tenvoice.platform.jobs_report import report

        preflight.database_ready(get_settings().database_url)
        return asyncio.run(report(get_settings(), args.retry, STORED_COUNTS))
    if args.command == "doctor":
        from tenvoice.platform import doctor

        return doctor.run(get_settings())
    # Before anything imports a metric: every process of the run then counts into files
    # that /metrics adds up (platform/metrics_process.py).
    with metrics_process.serve_directory():
        return _serve(args.host, args.port, args.workers, log_config)


def _migrate() -> int:
    from tenvoice.platform.migrate import upgrade

    settings = get_settings()
    if settings.migration_database_url:
        url, setting = settings.migration_database_url, preflight.MIGRATION_DATABASE_URL
    else:
        url, setting = settings.database_url, preflight.DATABASE_URL
    preflight.database_reachable(url, setting)
    ensure_embedded_secrets(settings)
    upgrade(url, settings.database_app_role, secrets_key=settings.secrets_key)
    print("migrations applied")
    return 0


def _serve(host: str, port: int, workers: int, log_config: dict[str, Any]) -> int:
    import uvicorn

    settings = get_settings()
    # Before anything starts or says "listening": a server that cannot serve should not.
    preflight.database_ready(settings.database_url)
    preflight.port_free(host, port)
    for line in ensure_embedded_secrets(settings):
        print(line, flush=True)
    require_secrets_key(settings.secrets_key)
    _default_callback(settings, host, port)
    print(f"tenvoice listening on http://{host}:{port} (docs: /docs)", flush=True)
    uvicorn.run(
        "tenvoice.main:create_served_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        # Applied again in each worker process, which does not run this function.
        log_config=log_config,
        log_level=settings.log_level,
        # One line per request comes from the app (platform/access_log.py), with its route
        # template rather than uvicorn's raw path.
        access_log=False,
        http="tenvoice.platform.httpserver:ProblemHttpProtocol",
    )
    return 0


def _default_callback(settings: Settings, host: str, port: int) -> None:
    """Point the simulated gateway at this server unless told otherwise (API.md)."""
    if settings.gateway_callback_url:
        return
    reachable = "127.0.0.1" if host in ("0.0.0.0", "", "::") else host  # noqa: S104
    if ":" in reachable:
        reachable = f"[{reachable}]"
    url = f"http://{reachable}:{port}/api/webhooks/payments"
    settings.gateway_callback_url = url
    # Worker processes (--workers) read their settings afresh from the environment.
    os.environ["TENVOICE_GATEWAY_CALLBACK_URL"] = url


async def _worker() -> int:
    from tenvoice.handlers import EVENT_HANDLERS, JOB_HANDLERS
    from tenvoice.platform import tracing
    from tenvoice.platform.db import Database
    from tenvoice.platform.worker import Worker

    settings = get_settings()
    ensure_embedded_secrets(settings)
    require_secrets_key(settings.secrets_key)
    tracing.configure()
    db = Database(settings.database_url, pool_size=settings.database_pool_size)
    tracing.instrument_engines(db.write_engine, db.read_engine)
    worker = Worker(db, settings, JOB_HANDLERS, EVENT_HANDLERS)
    exporter = None
    if settings.metrics_port is not None:
        from tenvoice.platform import metrics_exporter

        exporter = metrics_exporter.start(
            settings.metrics_host, settings.metrics_port, settings.metrics_token
        )
    # As for the API (main.create_served_app): long-lived objects out of the collector's view.
    gc.collect()
    gc.freeze()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await worker.run(stop)
    finally:
        await worker.close()
        await db.dispose()
        tracing.shutdown()
        if exporter is not None:
            exporter.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
