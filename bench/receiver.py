"""W5's webhook receiver: takes the simulated gateway's deliveries, refuses 10% of them.

A raw ASGI app (no framework), so that the receiver costs as little as possible of the two
cores the workers being measured also need. It answers 503 to a random 10% of deliveries,
so the workers retry, and 200 to the rest, counting the distinct `webhook-id`s it took: a
job lost between the worker and the receiver would be missing from that count.

    python -m bench.receiver --port 8002 [--fail-rate 0.1]
    GET /stats -> {"accepted": distinct ids, "accepted_total": 2xx answers, "refused": 503s}
"""

import argparse
import json
import random
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import uvicorn

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


class Receiver:
    def __init__(self, fail_rate: float) -> None:
        self.fail_rate = fail_rate
        self.accepted: set[bytes] = set()
        self.accepted_total = 0
        self.refused = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        if scope["method"] == "GET":
            body = json.dumps(
                {
                    "accepted": len(self.accepted),
                    "accepted_total": self.accepted_total,
                    "refused": self.refused,
                }
            ).encode()
            await _answer(send, 200, body)
            return
        more = True
        while more:  # the body is read and dropped: only the id matters here
            more = (await receive()).get("more_body", False)
        webhook_id = dict(scope["headers"]).get(b"webhook-id")
        if webhook_id is None:
            await _answer(send, 400, b'{"error": "no webhook-id"}')
        elif random.random() < self.fail_rate:
            self.refused += 1
            await _answer(send, 503, b'{"error": "try again"}')
        else:
            self.accepted.add(webhook_id)
            self.accepted_total += 1
            await _answer(send, 200, b'{"ok": true}')


async def _answer(send: Send, status: int, body: bytes) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": body})


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.receiver")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8002)
    parser.add_argument("--fail-rate", type=float, default=0.1)
    args = parser.parse_args()
    # One process: the distinct-id count must be one set.
    uvicorn.run(
        Receiver(args.fail_rate),
        host=args.host,
        port=args.port,
        log_level="warning",
        access_log=False,
    )


if __name__ == "__main__":
    main()
