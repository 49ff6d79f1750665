"""The webhook receiver of W5 (the simulated gateway's deliveries), of W7 (events fanned out
to three endpoints, one path each) and of W1 (its events' deliveries).

A raw ASGI app (no framework), so that the receiver costs as little as possible of the two
cores the workers being measured also need. It answers 503 to a random share of deliveries
(`--fail-rate`), so the workers retry, and 200 to the rest, counting the distinct
(path, `webhook-id`) pairs it took: a delivery lost between a worker and the receiver would
be missing from that count, and the count per path shows which endpoint lost it.

Per path it also checks order: each id taken for the first time must sort after the ones
before it (webhook ids are the events' uuid7 ids, and an endpoint's first attempts go out in
event order). With `BENCH_RECEIVER_SECRETS` (JSON: path -> whsec_ secret) it verifies the
signature of one delivery in `SAMPLE_EVERY` per path with the `standardwebhooks` library:
a sample, not all, since verifying costs CPU the workers being measured need.

    python -m bench.receiver --port 8002 [--fail-rate 0.1]
    GET /stats -> {"accepted": distinct pairs, "accepted_total": 2xx answers, "refused": 503s,
                   "paths": {path: distinct ids}, "out_of_order": n,
                   "sampled": n, "verified": n}
"""

import argparse
import json
import os
import random
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import uvicorn
from standardwebhooks import Webhook, WebhookVerificationError

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

SAMPLE_EVERY = 20


class Receiver:
    def __init__(self, fail_rate: float, secrets: dict[str, str]) -> None:
        self.fail_rate = fail_rate
        self.verifiers = {path: Webhook(secret) for path, secret in secrets.items()}
        self.accepted: set[tuple[str, bytes]] = set()
        self.per_path: dict[str, int] = {}
        self.last_new: dict[str, bytes] = {}
        self.seen: dict[str, int] = {}
        self.accepted_total = 0
        self.refused = 0
        self.out_of_order = 0
        self.sampled = 0
        self.verified = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        if scope["method"] == "GET":
            await _answer(send, 200, json.dumps(self.stats()).encode())
            return
        path: str = scope["path"]
        self.seen[path] = self.seen.get(path, 0) + 1
        verifier = self.verifiers.get(path)
        sample = verifier is not None and self.seen[path] % SAMPLE_EVERY == 1
        body = b""
        more = True
        while more:  # the body is dropped unless its signature is to be checked
            message = await receive()
            if sample:
                body += message.get("body", b"")
            more = message.get("more_body", False)
        headers = dict(scope["headers"])
        webhook_id = headers.get(b"webhook-id")
        if webhook_id is None:
            await _answer(send, 400, b'{"error": "no webhook-id"}')
            return
        if random.random() < self.fail_rate:
            self.refused += 1
            await _answer(send, 503, b'{"error": "try again"}')
            return
        if sample and verifier is not None:
            self._verify(verifier, body, headers)
        self._take(path, webhook_id)
        await _answer(send, 200, b'{"ok": true}')

    def _take(self, path: str, webhook_id: bytes) -> None:
        self.accepted_total += 1
        if (path, webhook_id) in self.accepted:
            return  # a redelivery: order is about first arrivals
        self.accepted.add((path, webhook_id))
        self.per_path[path] = self.per_path.get(path, 0) + 1
        last = self.last_new.get(path)
        if last is not None and webhook_id < last:
            self.out_of_order += 1
        else:
            self.last_new[path] = webhook_id

    def _verify(self, verifier: Webhook, body: bytes, headers: dict[bytes, bytes]) -> None:
        self.sampled += 1
        wanted = (b"webhook-id", b"webhook-timestamp", b"webhook-signature")
        signed = {k.decode(): headers.get(k, b"").decode() for k in wanted}
        try:
            event = verifier.verify(body, signed)
        except WebhookVerificationError:
            return
        # The body is the event the id names, with its entity's snapshot.
        if event.get("id") == headers[b"webhook-id"].decode() and "object" in event.get("data"):
            self.verified += 1

    def stats(self) -> dict[str, Any]:
        return {
            "accepted": len(self.accepted),
            "accepted_total": self.accepted_total,
            "refused": self.refused,
            "paths": self.per_path,
            "out_of_order": self.out_of_order,
            "sampled": self.sampled,
            "verified": self.verified,
        }


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


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
    secrets = json.loads(os.environ.get("BENCH_RECEIVER_SECRETS") or "{}")
    # One process: the distinct-pair count must be one set.
    uvicorn.run(
        Receiver(args.fail_rate, secrets),
        host=args.host,
        port=args.port,
        log_level="warning",
        access_log=False,
    )


if __name__ == "__main__":
    main()
