"""`tenvoice worker`'s own /metrics, on TENVOICE_METRICS_PORT.

A worker run on its own is a separate process, often on another host, with no HTTP server
of its own: what it counts (job attempts, run times, latency, webhook attempts) would be
seen by no one. With the port set it serves them, behind the same bearer token as the
API's /metrics. What the database holds (outbox depth, dead jobs) is on the API's
/metrics already, read at scrape, so the worker does not read it again.

On the API's host, a worker given the API's PROMETHEUS_MULTIPROC_DIR is in the API's
/metrics instead, and needs no port.
"""

import logging
import threading
from collections.abc import Iterable
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server
from wsgiref.types import StartResponse, WSGIEnvironment

import orjson
from prometheus_client import make_wsgi_app

from tenvoice.platform.http import PROBLEM_JSON, problem_body
from tenvoice.platform.metrics_endpoint import authorized, scrape_registry

log = logging.getLogger("tenvoice.metrics")


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass  # one line per scrape is noise


def start(host: str, port: int, token: str | None) -> WSGIServer:
    """Serve the metrics on host:port from a daemon thread; the caller shuts it down."""
    metrics = make_wsgi_app(scrape_registry())

    def guarded(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        if authorized(environ.get("HTTP_AUTHORIZATION"), token):
            served: Iterable[bytes] = metrics(environ, start_response)
            return served
        detail = "Send the metrics token as Authorization: Bearer <token>."
        body = orjson.dumps(
            problem_body(401, "unauthorized", "Missing or invalid credentials", detail)
        )
        headers = [("Content-Type", PROBLEM_JSON), ("WWW-Authenticate", "Bearer")]
        start_response("401 Unauthorized", headers)
        return [body]

    server = make_server(host, port, guarded, handler_class=_Quiet)
    threading.Thread(target=server.serve_forever, name="metrics", daemon=True).start()
    log.info("worker metrics on http://%s:%d/metrics", host, port)
    return server
