"""The SSRF guard when an endpoint is saved (API.md: https, public addresses only, unless
TENVOICE_WEBHOOK_ALLOW_PRIVATE): names are resolved here, for real."""

import socket
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from tenvoice.config import Settings
from tenvoice.main import create_app
from tenvoice.platform.db import Database
from tests.conftest import ADMIN_KEY, TenantHandle, make_tenant
from tests.problems import assert_problem
from tests.webhooks.test_endpoints import PUBLIC_URL, make_endpoint

REFUSED = [
    "https://localhost/",
    "https://LocalHost:8443/hook",
    "https://127.0.0.1/",
    "https://127.8.9.10/",
    "https://[::1]/",
    "https://169.254.169.254/latest/meta-data/",
    "https://[fe80::1]/",
    "https://10.0.0.1/",
    "https://172.16.0.1/",
    "https://192.168.1.1/",
    "https://100.64.0.1/",
    "https://[fd00::1]/",
    "https://224.0.0.1/",
    "https://0.0.0.0/",
    "https://0x7f.1/",
    "https://2130706433/",
    "https://[::ffff:127.0.0.1]/",
    "https://[64:ff9b::a00:1]/",
    # Not the address: the shape.
    "http://93.184.216.34/hooks",
    "ftp://93.184.216.34/hooks",
    "https://user:pass@93.184.216.34/hooks",
    "https://93.184.216.34/hooks#part",
    "https:///hooks",
    "93.184.216.34/hooks",
    "https://no-such-host.invalid/",
]


def _loopback_names() -> list[str]:
    """Names other than `localhost` that resolve to loopback on this machine (the resolver's
    own answer, not a literal); `localhost` itself always does, through /etc/hosts."""
    found = ["localhost"]
    for name in ("localhost.", "ip6-localhost", "localhost.localdomain", socket.gethostname()):
        try:
            infos = socket.getaddrinfo(name, 443, type=socket.SOCK_STREAM)
        except OSError:
            continue
        addresses = {str(info[4][0]) for info in infos}
        if all(address == "::1" or address.startswith("127.") for address in addresses):
            found.append(name)
    return list(dict.fromkeys(found))


@pytest.mark.parametrize("url", REFUSED)
async def test_a_url_that_does_not_lead_to_the_public_internet_is_refused(
    client: httpx.AsyncClient, tenant_a: TenantHandle, url: str
) -> None:
    body = {"url": url, "enabledEvents": ["*"]}
    response = await client.post("/api/webhook-endpoints", json=body, headers=tenant_a.headers)
    problem = assert_problem(response, 422, "invalid_webhook_url")
    assert [error["field"] for error in problem["errors"]] == ["url"]
    listed = await client.get("/api/webhook-endpoints", headers=tenant_a.headers)
    assert listed.json()["data"] == []


@pytest.mark.parametrize("name", _loopback_names())
async def test_a_name_that_resolves_to_loopback_is_refused(
    client: httpx.AsyncClient, tenant_a: TenantHandle, name: str
) -> None:
    body = {"url": f"https://{name}/hooks", "enabledEvents": ["*"]}
    response = await client.post("/api/webhook-endpoints", json=body, headers=tenant_a.headers)
    problem = assert_problem(response, 422, "invalid_webhook_url")
    # Refused for where it leads, which the answer names.
    assert "resolves to 127." in problem["detail"] or "resolves to ::1" in problem["detail"]


@pytest.mark.parametrize(
    "url", ["https://127.0.0.1/", "http://93.184.216.34/", "https://localhost/"]
)
async def test_patch_checks_the_url_too(
    client: httpx.AsyncClient, tenant_a: TenantHandle, url: str
) -> None:
    created = await make_endpoint(client, tenant_a)
    path = f"/api/webhook-endpoints/{created['id']}"
    response = await client.patch(path, json={"url": url}, headers=tenant_a.headers)
    assert_problem(response, 422, "invalid_webhook_url")
    assert (await client.get(path, headers=tenant_a.headers)).json()["url"] == PUBLIC_URL


@pytest.fixture
async def private_client(settings: Settings, db: Database) -> AsyncIterator[httpx.AsyncClient]:
    """The same database served by an app with TENVOICE_WEBHOOK_ALLOW_PRIVATE=true."""
    relaxed = settings.model_copy(update={"webhook_allow_private": True})
    transport = httpx.ASGITransport(app=create_app(relaxed, db=db))
    async with httpx.AsyncClient(transport=transport, base_url="http://tenvoice.test") as c:
        yield c


async def test_allow_private_takes_loopback_and_plain_http(
    private_client: httpx.AsyncClient,
) -> None:
    admin = {"Authorization": f"Bearer {ADMIN_KEY}"}
    tenant = await make_tenant(private_client, admin, "Dev")
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        port = listener.getsockname()[1]
    taken: list[dict[str, Any]] = []
    for url in (
        f"http://127.0.0.1:{port}/hooks",
        f"http://localhost:{port}/hooks",
        "https://10.0.0.1/hooks",
        "https://[::1]:9443/",
    ):
        taken.append(await make_endpoint(private_client, tenant, url=url))
    assert taken[0]["url"] == f"http://127.0.0.1:{port}/hooks"
    patched = await private_client.patch(
        f"/api/webhook-endpoints/{taken[0]['id']}",
        json={"url": "http://192.168.0.7:8080/in"},
        headers=tenant.headers,
    )
    assert patched.status_code == 200, patched.text
    # What no setting makes a webhook URL.
    for url in ("ftp://127.0.0.1/", "https://no-such-host.invalid/", "http://u:p@127.0.0.1/"):
        body = {"url": url, "enabledEvents": ["*"]}
        response = await private_client.post(
            "/api/webhook-endpoints", json=body, headers=tenant.headers
        )
        assert_problem(response, 422, "invalid_webhook_url")
