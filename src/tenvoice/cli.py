"""`tenvoice migrate | serve`: what automation and the README's two commands rely on."""

import argparse
import logging
import sys

from tenvoice.config import ensure_embedded_secrets, get_settings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tenvoice", description="Multi-tenant invoicing API")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("migrate", help="apply database migrations")
    serve = sub.add_parser("serve", help="run the HTTP API")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--workers", type=int, default=1, help="API worker processes")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    if args.command == "migrate":
        return _migrate()
    return _serve(args.host, args.port, args.workers)


def _migrate() -> int:
    from tenvoice.platform.migrate import upgrade

    settings = get_settings()
    upgrade(settings.migration_database_url or settings.database_url, settings.database_app_role)
    print("migrations applied")
    return 0


def _serve(host: str, port: int, workers: int) -> int:
    import uvicorn

    settings = get_settings()
    for line in ensure_embedded_secrets(settings):
        print(line, flush=True)
    print(f"tenvoice listening on http://{host}:{port} (docs: /docs)", flush=True)
    uvicorn.run(
        "tenvoice.main:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="info",
        access_log=False,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
