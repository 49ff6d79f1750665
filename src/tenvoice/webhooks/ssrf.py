"""The SSRF guard: webhook URLs must reach the public internet, checked when an endpoint is
saved and again, on the resolved address itself, each time a delivery connects.

A delivery connects to an address the guard has just checked (the URL's host still names
the server in Host and TLS SNI), never to whatever the name answers at connect time, so a
name that answers with a public address when checked and a private one a moment later (DNS
rebinding) gets nowhere.
"""

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import httpx

from tenvoice.platform.errors import ValidationFailed

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
# host, port -> every address the name resolves to (a seam for tests of DNS rebinding).
Resolver = Callable[[str, int], Awaitable[list[str]]]

# Addresses that embed an IPv4 address: judged by the address they lead to.
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


class InvalidWebhookUrl(ValidationFailed):
    code = "invalid_webhook_url"

    def __init__(self, message: str) -> None:
        super().__init__("url", message)


@dataclass(frozen=True, slots=True)
class Target:
    """Where one delivery connects: the resolved address, with the name for Host and SNI."""

    url: httpx.URL
    host: str
    address: str
    # The URL with the address in place of the name: where the request is sent.
    connect_url: httpx.URL


def is_public(address: IpAddress) -> bool:
    """Routable on the public internet: not loopback, private, link-local (the cloud
    metadata service at 169.254.169.254 among them), unique-local, shared, multicast or
    reserved."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour
        if embedded is None and address in _NAT64:
            embedded = ipaddress.IPv4Address(int(address) & 0xFFFF_FFFF)
        if embedded is not None:
            return is_public(embedded)
    return address.is_global and not address.is_multicast


def check_shape(url: str, *, allow_private: bool) -> httpx.URL:
    """The URL, if it is one a webhook may be sent to (before any name is resolved)."""
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, ValueError):
        raise InvalidWebhookUrl("Not a valid URL.") from None
    schemes = ("https", "http") if allow_private else ("https",)
    if parsed.scheme not in schemes:
        raise InvalidWebhookUrl("The URL must start with https://.")
    if not parsed.host:
        raise InvalidWebhookUrl("The URL has no host.")
    if parsed.userinfo:
        raise InvalidWebhookUrl("The URL must not carry a user name or password.")
    if parsed.fragment:
        raise InvalidWebhookUrl("The URL must not carry a #fragment.")
    return parsed


async def system_resolver(host: str, port: int) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(
        host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
    )
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


async def resolve(
    url: httpx.URL, *, allow_private: bool, resolver: Resolver = system_resolver
) -> Target:
    """The address to connect to for `url`; InvalidWebhookUrl if the name does not resolve
    or any address it resolves to is not public (one private answer is enough to refuse: a
    client picks among them)."""
    host = url.host
    try:
        literal: IpAddress | None = ipaddress.ip_address(host)
    except ValueError:
        literal = None
    if literal is not None:
        addresses = [str(literal)]
    else:
        try:
            addresses = await resolver(host, url.port or (443 if url.scheme == "https" else 80))
        except (OSError, UnicodeError):
            addresses = []
        if not addresses:
            raise InvalidWebhookUrl(f"The host {host} does not resolve.")
    if not allow_private:
        for address in addresses:
            if not is_public(ipaddress.ip_address(address.split("%", 1)[0])):
                named = f"{host} is" if literal is not None else f"{host} resolves to {address},"
                raise InvalidWebhookUrl(f"The host {named} not a public address.")
    return Target(url, host, addresses[0], url.copy_with(host=addresses[0]))


async def check_url(url: str, *, allow_private: bool, resolver: Resolver = system_resolver) -> str:
    """The URL as saved, once it is known to lead somewhere public."""
    parsed = check_shape(url, allow_private=allow_private)
    await resolve(parsed, allow_private=allow_private, resolver=resolver)
    return str(parsed)
