"""A request body read whole by a middleware, then handed on to the app as if unread.

The idempotency layer (to fingerprint a request) and the strict-input check (to parse it)
both need the body before the route does; the body guard outside them has capped its size.
"""

from starlette.types import Message, Receive


async def read_body(receive: Receive) -> bytes | None:
    """The whole body, or None if the client went away first."""
    parts: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return None
        parts.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(parts)


def replay_body(body: bytes, receive: Receive) -> Receive:
    """A `receive` that gives the app `body` in one message, then whatever follows it."""
    delivered = False

    async def replay() -> Message:
        nonlocal delivered
        if delivered:
            return await receive()  # what follows the body: a disconnect
        delivered = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay
