"""The OTLP/HTTP receiver of the tracing stage: it takes span exports and counts the spans.

A raw ASGI app, like `bench.receiver`, so that what the stage measures is the service's cost
of tracing (spans made, batched, encoded and sent), not a collector's. It decodes each export
to count its spans, which a real collector does too.

    python -m bench.otlp_sink --port 4318
    POST /v1/traces (protobuf) -> 200;  GET /stats -> {"exports": n, "spans": n}
"""

import argparse
import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import uvicorn
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


class Sink:
    def __init__(self) -> None:
        self.exports = 0
        self.spans = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        body = b""
        more = True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        if scope["method"] == "POST" and scope["path"] == "/v1/traces":
            export = ExportTraceServiceRequest.FromString(body)
            self.exports += 1
            self.spans += sum(
                len(scoped.spans) for spans in export.resource_spans for scoped in spans.scope_spans
            )
            answer = ExportTraceServiceResponse().SerializeToString()
            await _answer(send, 200, answer, b"application/x-protobuf")
        elif scope["path"] == "/stats":
            stats = {"exports": self.exports, "spans": self.spans}
            await _answer(send, 200, json.dumps(stats).encode(), b"application/json")
        else:
            await _answer(send, 404, b"", b"text/plain")


async def _answer(send: Send, status: int, body: bytes, content_type: bytes) -> None:
    headers = [(b"content-type", content_type)]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def main() -> None:
    parser = argparse.ArgumentParser(prog="bench.otlp_sink")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    uvicorn.run(Sink(), host="127.0.0.1", port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
