"""W6: the embedded SQLite set-up, on a fresh file, seeded through the HTTP API.

A handful of tenants, each with a key, a customer and a webhook endpoint subscribed to
everything (so that W1 writes its events' deliveries, as on PostgreSQL), is all W1 needs;
the API makes them, as it would on a user's first day.
"""

import subprocess
from pathlib import Path

import httpx

from bench.context import Bench
from bench.manifest import TenantSeed
from bench.procs import BIN, REPO, Service


def fresh_database(directory: Path) -> str:
    directory.mkdir(parents=True, exist_ok=True)
    for leftover in directory.glob("tenvoice.db*"):
        leftover.unlink()
    return f"sqlite:///{directory / 'tenvoice.db'}"


def migrate(bench: Bench, url: str) -> None:
    subprocess.run(
        [str(BIN / "tenvoice"), "migrate"],
        env=bench.env(url),
        cwd=REPO,
        check=True,
        capture_output=True,
    )


async def seed_tenants(
    bench: Bench, service: Service, count: int, webhook_url: str
) -> list[TenantSeed]:
    admin = {"Authorization": f"Bearer {bench.admin_key}"}
    tenants = []
    async with httpx.AsyncClient(base_url=service.url, timeout=30) as client:
        for n in range(count):
            tenant = await _post(client, "/api/tenants", {"name": f"Embedded {n}"}, admin)
            key = await _post(
                client, f"/api/tenants/{tenant['id']}/api-keys", {"name": "bench"}, admin
            )
            tenant_key = {"Authorization": f"Bearer {key['key']}"}
            customer = await _post(
                client,
                "/api/customers",
                {"name": f"Customer {n}", "email": f"customer{n}@example.com"},
                tenant_key,
            )
            await _post(
                client,
                "/api/webhook-endpoints",
                {"url": webhook_url, "enabledEvents": ["*"]},
                tenant_key,
            )
            tenants.append(TenantSeed(tenant["id"], key["key"], customer["id"], [], 0))
    return tenants


async def _post(
    client: httpx.AsyncClient, path: str, body: dict[str, object], headers: dict[str, str]
) -> dict[str, str]:
    response = await client.post(path, json=body, headers=headers)
    response.raise_for_status()
    created: dict[str, str] = response.json()
    return created
