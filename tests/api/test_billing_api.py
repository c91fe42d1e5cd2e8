"""Quotas, charges, limits and idempotency through the HTTP API."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from imagegate.app import create_app
from imagegate.errors import UpstreamError
from imagegate.settings import Settings
from imagegate.storage.tables import assets, ledger, reservations, usage
from tests.conftest import ADMIN_KEY, Gateway

ROUTE = "/v1/images/generations"
PRICED = """
[[models]]
id = "sketch"
[models.pricing]
text_input_per_mtok = 0.0
image_output_per_mtok = 0.0
per_request = 0.1
"""
BODY = {"model": "sketch", "prompt": "a red square", "size": "256x256"}


@pytest.fixture
async def priced(tmp_path: Path) -> AsyncIterator[Gateway]:
    """A gateway where every sketch request costs exactly $0.10."""
    config = tmp_path / "config.toml"
    config.write_text(PRICED)
    settings = Settings(
        data_dir=tmp_path / "data",
        admin_key=ADMIN_KEY,
        config=config,
        concurrency_queue_seconds=0.2,
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gw.test") as client:
            yield Gateway(app, client, "")


async def make_key(gateway: Gateway, **limits: Any) -> tuple[str, dict[str, str]]:
    response = await gateway.client.post("/admin/keys", json=limits, headers=gateway.admin)
    assert response.status_code == 201, response.text
    body = response.json()
    return body["id"], {"Authorization": f"Bearer {body['key']}"}


def hold_renders(gateway: Gateway, monkeypatch: pytest.MonkeyPatch) -> asyncio.Event:
    """Make the renderer wait for the returned event before each render."""
    provider = gateway.services.images._registry.get("local")
    original = provider.generate  # type: ignore[union-attr]
    gate = asyncio.Event()

    async def slow(*args: Any, **kwargs: Any) -> Any:
        await gate.wait()
        return await original(*args, **kwargs)

    monkeypatch.setattr(provider, "generate", slow)
    return gate


async def show(gateway: Gateway, key_id: str) -> dict[str, Any]:
    response = await gateway.client.get(f"/admin/keys/{key_id}", headers=gateway.admin)
    body: dict[str, Any] = response.json()
    return body


async def ledger_rows(gateway: Gateway, key_id: str) -> list[tuple[str, Decimal]]:
    query = sa.select(ledger.c.kind, ledger.c.amount_usd).where(ledger.c.key_id == key_id)
    async with gateway.services.engine.connect() as conn:
        rows = (await conn.execute(query.order_by(ledger.c.id))).all()
    return [(kind, Decimal(amount)) for kind, amount in rows]


async def test_100_concurrent_requests_with_credit_for_10(priced: Gateway) -> None:
    key_id, headers = await make_key(priced, credit_usd=1.0)
    responses = await asyncio.gather(
        *(priced.client.post(ROUTE, json=BODY, headers=headers) for _ in range(100))
    )
    statuses = [response.status_code for response in responses]
    assert statuses.count(200) == 10 and statuses.count(429) == 90
    refused = next(r for r in responses if r.status_code == 429).json()["error"]
    assert refused["code"] == "insufficient_quota" and refused["type"] == "insufficient_quota"
    assert (await show(priced, key_id))["balance_usd"] == 0
    await priced.services.usage.flush()
    async with priced.services.engine.connect() as conn:
        charged = (
            await conn.execute(
                sa.select(sa.func.sum(usage.c.cost_usd)).where(
                    usage.c.key_id == key_id, usage.c.status == 200
                )
            )
        ).scalar_one()
    assert Decimal(charged) == Decimal("1.0")


async def test_an_upstream_failure_refunds_exactly_once(
    priced: Gateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    key_id, headers = await make_key(priced, credit_usd=0.5)
    provider = priced.services.images._registry.get("local")

    async def broken(*_: object, **__: object) -> object:
        raise UpstreamError("the upstream answered garbage")

    monkeypatch.setattr(provider, "generate", broken)
    response = await priced.client.post(ROUTE, json=BODY, headers=headers)
    assert response.status_code == 502
    assert (await show(priced, key_id))["balance_usd"] == 0.5
    kinds = [kind for kind, _ in await ledger_rows(priced, key_id)]
    assert kinds == ["topup", "reserve", "release"]


async def test_a_key_without_spending_caps_is_charged_with_its_assets_and_holds_nothing(
    priced: Gateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    key_id, headers = await make_key(priced)
    response = await priced.client.post(ROUTE, json={**BODY, "n": 2}, headers=headers)
    assert response.status_code == 200
    assert await ledger_rows(priced, key_id) == [("charge", Decimal("-0.1"))]
    shown = await show(priced, key_id)
    assert shown["balance_usd"] is None and shown["spent_today_usd"] == pytest.approx(0.1)
    async with priced.services.engine.connect() as conn:
        holds = await conn.scalar(sa.select(sa.func.count()).select_from(reservations))
        stored = await conn.scalar(
            sa.select(sa.func.count()).select_from(assets).where(assets.c.owner_key_id == key_id)
        )
    assert holds == 0 and stored == 2

    provider = priced.services.images._registry.get("local")

    async def broken(*_: object, **__: object) -> object:
        raise UpstreamError("the upstream answered garbage")

    monkeypatch.setattr(provider, "generate", broken)
    assert (await priced.client.post(ROUTE, json=BODY, headers=headers)).status_code == 502
    assert await ledger_rows(priced, key_id) == [("charge", Decimal("-0.1"))]


async def test_idempotent_replay_runs_and_charges_once(priced: Gateway) -> None:
    key_id, headers = await make_key(priced, credit_usd=1.0)
    headers = {**headers, "Idempotency-Key": "order-42"}
    first = await priced.client.post(ROUTE, json=BODY, headers=headers)
    again = await priced.client.post(ROUTE, json=BODY, headers=headers)
    assert first.status_code == again.status_code == 200
    assert first.json() == again.json()
    assert again.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers
    assert (await show(priced, key_id))["balance_usd"] == pytest.approx(0.9)
    other = await priced.client.post(ROUTE, json={**BODY, "prompt": "blue"}, headers=headers)
    assert other.status_code == 422
    assert other.json()["error"]["param"] == "Idempotency-Key"


async def test_same_key_in_flight_is_409(priced: Gateway, monkeypatch: pytest.MonkeyPatch) -> None:
    _, headers = await make_key(priced)
    headers = {**headers, "Idempotency-Key": "slow-1"}
    gate = hold_renders(priced, monkeypatch)
    first = asyncio.create_task(priced.client.post(ROUTE, json=BODY, headers=headers))
    await asyncio.sleep(0.2)
    second = await priced.client.post(ROUTE, json=BODY, headers=headers)
    gate.set()
    assert second.status_code == 409 and (await first).status_code == 200


async def test_idempotency_keys_belong_to_their_caller(priced: Gateway) -> None:
    _, alice = await make_key(priced)
    _, bob = await make_key(priced)
    for headers in (alice, bob):
        response = await priced.client.post(
            ROUTE, json=BODY, headers={**headers, "Idempotency-Key": "same"}
        )
        assert "idempotent-replayed" not in response.headers


async def test_every_authenticated_response_has_rate_limit_headers(priced: Gateway) -> None:
    _, headers = await make_key(priced, rpm=50)
    for response in (
        await priced.client.get("/v1/models", headers=headers),
        await priced.client.post(ROUTE, json=BODY, headers=headers),
        await priced.client.post(ROUTE, json={"model": "nope", "prompt": "x"}, headers=headers),
    ):
        assert response.headers["x-ratelimit-limit-requests"] == "50"
        assert int(response.headers["x-ratelimit-remaining-requests"]) < 50
        assert response.headers["x-ratelimit-reset-requests"].endswith("s")


def assert_rate_limited(response: httpx.Response, code: str = "rate_limit_exceeded") -> None:
    assert response.status_code == 429, response.text
    assert response.json()["error"]["code"] == code
    assert int(response.headers["retry-after"]) >= 1


async def test_requests_per_minute(priced: Gateway) -> None:
    _, headers = await make_key(priced, rpm=2)
    for _ in range(2):
        assert (await priced.client.get("/v1/models", headers=headers)).status_code == 200
    refused = await priced.client.get("/v1/models", headers=headers)
    assert_rate_limited(refused)
    assert refused.headers["x-ratelimit-remaining-requests"] == "0"


async def test_images_per_minute_and_megapixels_per_day(priced: Gateway) -> None:
    _, headers = await make_key(priced, images_per_minute=3)
    assert (
        await priced.client.post(ROUTE, json={**BODY, "n": 2}, headers=headers)
    ).status_code == 200
    assert_rate_limited(await priced.client.post(ROUTE, json={**BODY, "n": 2}, headers=headers))
    _, headers = await make_key(priced, megapixels_per_day=0.1)
    assert (await priced.client.post(ROUTE, json=BODY, headers=headers)).status_code == 200
    assert_rate_limited(await priced.client.post(ROUTE, json=BODY, headers=headers))


async def test_concurrency_queues_briefly_then_429(
    priced: Gateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, headers = await make_key(priced, max_concurrent=1)
    gate = hold_renders(priced, monkeypatch)
    first = asyncio.create_task(priced.client.post(ROUTE, json=BODY, headers=headers))
    await asyncio.sleep(0.05)
    assert_rate_limited(await priced.client.post(ROUTE, json=BODY, headers=headers))
    gate.set()
    assert (await first).status_code == 200
    assert (await priced.client.post(ROUTE, json=BODY, headers=headers)).status_code == 200


async def test_budget_expiry_and_routes(priced: Gateway) -> None:
    _, headers = await make_key(priced, budget_daily_usd=0.15)
    assert (await priced.client.post(ROUTE, json=BODY, headers=headers)).status_code == 200
    assert_rate_limited(
        await priced.client.post(ROUTE, json=BODY, headers=headers), "insufficient_quota"
    )
    _, headers = await make_key(priced, expires_at=time.time() - 1)
    expired = await priced.client.get("/v1/models", headers=headers)
    assert expired.status_code == 401 and expired.json()["error"]["code"] == "key_expired"
    _, headers = await make_key(priced, routes=["/v1/models*"])
    assert (await priced.client.get("/v1/models", headers=headers)).status_code == 200
    forbidden = await priced.client.post(ROUTE, json=BODY, headers=headers)
    assert forbidden.status_code == 403 and forbidden.json()["error"]["code"] == "route_not_allowed"


async def test_admin_updates_and_top_ups(priced: Gateway) -> None:
    key_id, headers = await make_key(priced, credit_usd=0.05, name="team")
    assert_rate_limited(
        await priced.client.post(ROUTE, json=BODY, headers=headers), "insufficient_quota"
    )
    topped = await priced.client.post(
        f"/admin/keys/{key_id}/topup", json={"amount_usd": 1}, headers=priced.admin
    )
    assert topped.json()["balance_usd"] == pytest.approx(1.05)
    assert (await priced.client.post(ROUTE, json=BODY, headers=headers)).status_code == 200
    patched = await priced.client.patch(
        f"/admin/keys/{key_id}", json={"rpm": 7, "budget_daily_usd": 3}, headers=priced.admin
    )
    assert patched.json()["rpm"] == 7 and patched.json()["budget_daily_usd"] == 3
    shown = await show(priced, key_id)
    assert shown["spent_today_usd"] == pytest.approx(0.1) and shown["balance_usd"] == pytest.approx(
        0.95
    )
    bad = await priced.client.post(
        f"/admin/keys/{key_id}/topup", json={"amount_usd": -1}, headers=priced.admin
    )
    assert bad.status_code == 400
    missing = await priced.client.get("/admin/keys/key_nope", headers=priced.admin)
    assert missing.status_code == 404


async def test_estimate_charges_nothing(priced: Gateway, gateway: Gateway) -> None:
    key_id, headers = await make_key(priced, credit_usd=1.0)
    response = await priced.client.post("/api/estimate", json={**BODY, "n": 3}, headers=headers)
    assert response.json() == {
        "model": "sketch",
        "currency": "USD",
        "estimated_cost": pytest.approx(0.1),
        "breakdown": {
            "request": pytest.approx(0.1),
            "output": 0.0,
            "text_input": 0.0,
            "image_input": 0.0,
            "input_text_tokens": 3,
            "input_image_tokens": 0,
            "output_tokens": 198,
            "image_count": 3,
        },
    }
    assert (await show(priced, key_id))["balance_usd"] == 1.0
    tokens = await gateway.client.post(
        "/api/estimate",
        json={"endpoint": "openai-image-edit", "model": "sketch", "prompt": "x", "images": [1, 2]},
        headers=gateway.auth,
    )
    assert tokens.json()["breakdown"]["input_image_tokens"] == 2 * (85 + 170 * 4)
    bad = await gateway.client.post(
        "/api/estimate", json={"endpoint": "nope"}, headers=gateway.auth
    )
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "endpoint"


async def test_usage_api(priced: Gateway) -> None:
    alice_id, alice = await make_key(priced)
    _, bob = await make_key(priced)
    await priced.client.post(ROUTE, json=BODY, headers=alice)
    await priced.client.post(ROUTE, json={**BODY, "n": 11}, headers=alice)
    await priced.client.post(ROUTE, json=BODY, headers=bob)
    own = (await priced.client.get("/api/usage", headers=alice)).json()
    assert {row["key_id"] for row in own["data"]} == {alice_id}
    assert own["totals"]["requests"] == 2 and own["totals"]["errors"] == 1
    assert own["totals"]["cost_usd"] == pytest.approx(0.1)
    by_model = {group["model"]: group for group in own["by_model"]}
    assert by_model["sketch"]["cost_usd"] == pytest.approx(0.1) and len(own["by_day"]) == 1
    everyone = (await priced.client.get("/api/usage", headers=priced.admin)).json()
    assert everyone["totals"]["requests"] == 3 and len(everyone["by_key"]) == 2
    forbidden = await priced.client.get("/api/usage", params={"key_id": "x"}, headers=alice)
    assert forbidden.status_code == 403
    csv = await priced.client.get("/api/usage", params={"format": "csv"}, headers=alice)
    lines = csv.text.strip().splitlines()
    assert csv.headers["content-type"].startswith("text/csv") and len(lines) == 3
    assert lines[0].startswith("created_at,request_id,key_id")
    future = (
        await priced.client.get("/api/usage", params={"start": "2999-01-01"}, headers=alice)
    ).json()
    assert future["data"] == [] and future["totals"]["requests"] == 0
