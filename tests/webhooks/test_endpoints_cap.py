"""At most 16 endpoints per tenant (API.md: 409 too_many_endpoints), also when creates race."""

import asyncio

import httpx
import pytest

from tests.conftest import TenantHandle
from tests.problems import assert_problem
from tests.webhooks.test_endpoints import PUBLIC_URL, make_endpoint

CAP = 16


async def count(client: httpx.AsyncClient, tenant: TenantHandle) -> int:
    response = await client.get(
        "/api/webhook-endpoints", params={"includeTotal": "true"}, headers=tenant.headers
    )
    assert response.status_code == 200, response.text
    total: int = response.json()["pagination"]["totalCount"]
    return total


async def create(client: httpx.AsyncClient, tenant: TenantHandle) -> httpx.Response:
    body = {"url": PUBLIC_URL, "enabledEvents": ["*"]}
    return await client.post("/api/webhook-endpoints", json=body, headers=tenant.headers)


async def test_the_seventeenth_endpoint_is_refused(
    client: httpx.AsyncClient, tenant_a: TenantHandle, tenant_b: TenantHandle
) -> None:
    made = [await make_endpoint(client, tenant_a) for _ in range(CAP)]
    refused = await create(client, tenant_a)
    problem = assert_problem(refused, 409, "too_many_endpoints")
    assert "16" in problem["detail"]
    assert await count(client, tenant_a) == CAP
    # The cap is per tenant: another tenant's endpoints do not count.
    assert (await create(client, tenant_b)).status_code == 201
    # Deleting one makes room for one.
    deleted = await client.delete(
        f"/api/webhook-endpoints/{made[0]['id']}", headers=tenant_a.headers
    )
    assert deleted.status_code == 204, deleted.text
    assert (await create(client, tenant_a)).status_code == 201
    assert_problem(await create(client, tenant_a), 409, "too_many_endpoints")


@pytest.mark.parametrize(("existing", "racing"), [(CAP - 1, 2), (CAP - 4, 8)])
async def test_concurrent_creates_never_pass_the_cap(
    client: httpx.AsyncClient, tenant_a: TenantHandle, existing: int, racing: int
) -> None:
    for _ in range(existing):
        await make_endpoint(client, tenant_a)
    answers = await asyncio.gather(*(create(client, tenant_a) for _ in range(racing)))
    statuses = sorted(answer.status_code for answer in answers)
    room = CAP - existing
    assert statuses == [201] * room + [409] * (racing - room), [a.text for a in answers]
    for answer in answers:
        if answer.status_code == 409:
            assert_problem(answer, 409, "too_many_endpoints")
    assert await count(client, tenant_a) == CAP
