import httpx

from tests.conftest import TenantHandle, make_customer, make_invoice


async def test_create_finalize_and_timeline(
    client: httpx.AsyncClient, tenant_a: TenantHandle
) -> None:
    customer = await make_customer(client, tenant_a)
    invoice = await make_invoice(client, tenant_a, customer["id"])
    assert (invoice["subtotal"], invoice["tax"], invoice["total"]) == ("250.00", "27.50", "277.50")
    assert invoice["status"] == "draft"
    assert invoice["number"] is None

    response = await client.post(
        f"/api/invoices/{invoice['id']}/finalize", headers=tenant_a.headers
    )
    assert response.status_code == 200, response.text
    assert response.json()["number"].startswith("INV-")

    timeline = await client.get(f"/api/invoices/{invoice['id']}/timeline", headers=tenant_a.headers)
    assert [e["eventType"] for e in timeline.json()["data"]] == [
        "invoice.created",
        "invoice.finalized",
    ]
