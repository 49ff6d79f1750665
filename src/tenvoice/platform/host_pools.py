"""Connection pools for requests sent to an address resolved beforehand, one pool per host.

A request that goes to a pre-resolved address (the SSRF guard's, webhooks/ssrf.py) is pooled
by httpx under that address. Two names served from one address would then share
connections, and a TLS connection whose certificate was checked for one name would carry
the other's requests, unchecked. One pool per (scheme, name, port) keeps every connection
to the name it was opened for. The pools share one TLS context (loading the CA bundle costs
milliseconds and a few hundred KB each time), and only the most recently used are kept.
"""

import asyncio
from collections import OrderedDict

import httpx

from tenvoice.platform import tracing

# Idle pools beyond this many are closed, least recently used first.
POOL_LIMIT = 256
# Per host: a dispatcher sends one first attempt at a time and a few retries beside it.
_LIMITS = httpx.Limits(max_connections=8, max_keepalive_connections=4, keepalive_expiry=30)

Origin = tuple[str, str, int | None]


class HostPools:
    def __init__(self, limit: int = POOL_LIMIT) -> None:
        self._limit = limit
        self._tls = httpx.create_ssl_context(trust_env=False)
        self._pools: OrderedDict[Origin, httpx.AsyncBaseTransport] = OrderedDict()
        self._closing: set[asyncio.Task[None]] = set()

    def for_url(self, url: httpx.URL) -> httpx.AsyncBaseTransport:
        """The pool for the host `url` names (not the address it will connect to)."""
        origin = (url.scheme, url.host, url.port)
        pool = self._pools.get(origin)
        if pool is None:
            pool = tracing.traced_transport(
                httpx.AsyncHTTPTransport(verify=self._tls, trust_env=False, limits=_LIMITS)
            )
            self._pools[origin] = pool
            if len(self._pools) > self._limit:
                _, evicted = self._pools.popitem(last=False)
                closing = asyncio.get_running_loop().create_task(evicted.aclose())
                self._closing.add(closing)
                closing.add_done_callback(self._closing.discard)
        else:
            self._pools.move_to_end(origin)
        return pool

    def __len__(self) -> int:
        return len(self._pools)

    async def aclose(self) -> None:
        pools = list(self._pools.values())
        self._pools.clear()
        await asyncio.gather(*(pool.aclose() for pool in pools), *self._closing)
