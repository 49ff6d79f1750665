"""Connections for webhooks are pooled per host name, not per the address it resolves to: a
connection opened (and, over TLS, verified) for one name never carries another's requests."""

import uuid
from datetime import UTC, datetime

import httpx

from tenvoice.platform.host_pools import HostPools
from tenvoice.webhooks import sender
from tenvoice.webhooks.secrets import new_secret
from tests.webhooks.receivers import Receiver, serving


async def test_two_names_at_one_address_never_share_a_connection() -> None:
    async def resolver(host: str, port: int) -> list[str]:
        assert host in ("one.example.test", "two.example.test")
        return ["127.0.0.1"]

    pools = HostPools()
    try:
        async with serving(Receiver()) as receiver:
            port = receiver.base_url.rsplit(":", 1)[1]
            routes = {
                name: sender.Route(
                    f"http://{name}:{port}/in", allow_private=True, resolver=resolver
                )
                for name in ("one.example.test", "two.example.test")
            }
            for _ in range(3):
                for route in routes.values():
                    message = sender.message(uuid.uuid4(), "test", datetime.now(UTC), {})
                    outcome = await sender.send(pools, route, message, [new_secret()])
                    assert outcome.succeeded
    finally:
        await pools.aclose()
    connections: dict[str, set[tuple[str, int] | None]] = {}
    for request in receiver.received:
        connections.setdefault(request.headers["host"].split(":")[0], set()).add(request.client)
    # Each name kept its one connection alive across the three rounds...
    assert {name: len(seen) for name, seen in connections.items()} == {
        "one.example.test": 1,
        "two.example.test": 1,
    }
    # ...and the two are different connections to the same address.
    assert connections["one.example.test"].isdisjoint(connections["two.example.test"])


async def test_only_the_most_recently_used_pools_are_kept() -> None:
    pools = HostPools(limit=2)
    try:
        first = pools.for_url(httpx.URL("https://a.example.test/x"))
        assert pools.for_url(httpx.URL("https://a.example.test/other")) is first
        assert pools.for_url(httpx.URL("https://a.example.test:8443/x")) is not first
        assert pools.for_url(httpx.URL("https://a.example.test/x")) is first  # used again
        pools.for_url(httpx.URL("https://b.example.test/x"))  # the :8443 pool goes
        assert len(pools) == 2
        assert pools.for_url(httpx.URL("https://a.example.test/x")) is first
    finally:
        await pools.aclose()
