"""The built-in ``sketch`` renderer is free by default: it never draws down a key's credit."""

from __future__ import annotations

from tests.conftest import Gateway


async def test_sketch_costs_nothing_by_default(gateway: Gateway) -> None:
    created = await gateway.client.post(
        "/admin/keys", json={"name": "guest", "credit_usd": 1}, headers=gateway.admin
    )
    key_id, secret = created.json()["id"], created.json()["key"]
    auth = {"Authorization": f"Bearer {secret}"}
    body = {"model": "sketch", "prompt": "a red house", "size": "256x256", "n": 2}
    quote = await gateway.client.post("/api/estimate", json=body, headers=auth)
    assert quote.json()["estimated_cost"] == 0
    for _ in range(3):
        made = await gateway.client.post("/v1/images/generations", json=body, headers=auth)
        assert made.status_code == 200
    shown = (await gateway.client.get(f"/admin/keys/{key_id}", headers=gateway.admin)).json()
    assert shown["balance_usd"] == 1.0 and shown["spent_today_usd"] == 0.0
    listed = (await gateway.client.get("/api/models")).json()["data"]
    pricing = next(record for record in listed if record["id"] == "sketch")["pricing"]
    assert (pricing["input"], pricing["output"]) == (0, 0)


async def test_a_price_set_in_config_is_charged(priced_gateway: Gateway) -> None:
    body = {"model": "sketch", "prompt": "a red house", "size": "256x256"}
    quote = await priced_gateway.client.post(
        "/api/estimate", json=body, headers=priced_gateway.auth
    )
    assert quote.json()["estimated_cost"] > 0
