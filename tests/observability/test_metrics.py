"""``GET /metrics``: who may read it, and that each series counts what it says it counts."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from prometheus_client import REGISTRY

from imagegate import services as services_module
from imagegate.app import create_app
from imagegate.errors import UpstreamError
from imagegate.settings import Settings
from imagegate.storage import db
from imagegate.storage.fleet import read_fleet
from imagegate.storage.tables import tasks, usage, webhook_deliveries
from tests.api.fronts_kit import poll
from tests.conftest import Gateway
from tests.core.test_routing import Clock, Scripted, entry, router
from tests.observability.scrape import parse, total, value
from tests.providers.upstream_kit import request

GENERATE = {"model": "sketch", "prompt": "a green tree", "size": "256x256"}


async def scrape(gateway: Gateway) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    response = await gateway.client.get("/metrics", headers=gateway.admin)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    return parse(response.text)


async def test_metrics_need_an_admin_key(gateway: Gateway) -> None:
    anonymous = await gateway.client.get("/metrics")
    assert anonymous.status_code == 401
    assert anonymous.json()["error"]["code"] == "missing_api_key"
    client = await gateway.client.get("/metrics", headers=gateway.auth)
    assert client.status_code == 403
    assert client.json()["error"]["code"] == "admin_required"
    assert (await gateway.client.get("/metrics", headers=gateway.admin)).status_code == 200


async def test_public_metrics_need_no_key(tmp_path: Path) -> None:
    app = create_app(Settings(data_dir=tmp_path / "data", metrics_public=True))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://g.test") as client:
            response = await client.get("/metrics")
    assert response.status_code == 200
    assert ("imagegate_tasks", frozenset({("state", "queued")})) in parse(response.text)


async def test_requests_are_counted_by_route_template_not_by_path(gateway: Gateway) -> None:
    before = await scrape(gateway)
    generated = await gateway.client.post(
        "/v1/images/generations", json=GENERATE, headers=gateway.auth
    )
    assert generated.status_code == 200
    model = await gateway.client.get("/v1beta/models/sketch", headers=gateway.auth)
    assert model.status_code == 200
    for missing in ("/no/such/path", "/another/unknown/one"):
        assert (await gateway.client.get(missing)).status_code == 404
    after = await scrape(gateway)

    def delta(name: str, labels: dict[str, str]) -> float:
        return value(after, name, labels) - value(before, name, labels)

    generations = {"route": "/v1/images/generations", "status": "200"}
    assert delta("imagegate_requests_total", generations) == 1
    gemini = {"route": "/v1beta/models/{model:path}", "status": "200"}
    assert delta("imagegate_requests_total", gemini) == 1
    unmatched = {"route": "unmatched", "status": "404"}
    assert delta("imagegate_requests_total", unmatched) == 2
    assert not any("/no/such/path" in str(labels) for _, labels in after)
    assert delta("imagegate_request_duration_seconds_count", {"route": generations["route"]}) == 1
    assert delta("imagegate_images_total", {"model": "sketch", "provider": "local"}) == 1
    upstream = {"provider": "local", "outcome": "ok"}
    assert (
        total(after, "imagegate_upstream_requests_total", upstream)
        - total(before, "imagegate_upstream_requests_total", upstream)
        == 1
    )
    assert total(after, "imagegate_upstream_duration_seconds_count", {"provider": "local"}) > 0


async def test_spend_is_counted_per_model_as_charged(priced_gateway: Gateway) -> None:
    gateway = priced_gateway
    before = await scrape(gateway)
    for _ in range(2):
        made = await gateway.client.post(
            "/v1/images/generations", json=GENERATE, headers=gateway.auth
        )
        assert made.status_code == 200
    after = await scrape(gateway)
    await gateway.services.usage.flush()
    async with gateway.services.engine.connect() as conn:
        charged = await conn.scalar(
            sa.select(sa.func.sum(usage.c.cost_usd)).where(
                usage.c.model == "sketch", usage.c.status == 200
            )
        )
    spent = value(after, "imagegate_cost_usd_total", {"model": "sketch"}) - value(
        before, "imagegate_cost_usd_total", {"model": "sketch"}
    )
    assert charged > 0
    assert spent == pytest.approx(float(charged))


async def test_fleet_backlog_is_read_from_the_database(tmp_path: Path) -> None:
    engine = db.create_engine(f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}")
    await db.upgrade(engine)
    now = time.time()
    rows = [("t1", "queued", now - 40), ("t2", "queued", now - 5), ("t3", "running", now - 90)]
    rows += [("t4", "succeeded", now - 500)]
    async with engine.begin() as conn:
        for task_id, status, created in rows:
            await conn.execute(
                tasks.insert().values(
                    id=task_id, kind="image", owner_key_id="key_x", status=status, request={},
                    meta={}, created_at=created, updated_at=created,
                )
            )  # fmt: skip
        for state in ("pending", "pending", "delivered"):
            await conn.execute(
                webhook_deliveries.insert().values(
                    message_id="msg", url="https://example.com/hook", payload="{}", attempt=1,
                    state=state, due_at=now, created_at=now,
                )
            )  # fmt: skip
    figures = await read_fleet(engine, now=now)
    await engine.dispose()
    assert figures.tasks == {"queued": 2, "running": 1, "parked": 0}
    assert figures.oldest_queued_age == pytest.approx(40)
    assert figures.webhooks_pending == 2


async def test_the_scrape_reports_the_fleet_backlog(gateway: Gateway) -> None:
    samples = await scrape(gateway)
    assert value(samples, "imagegate_tasks", {"state": "queued"}) == 0
    assert ("imagegate_task_queue_age_seconds", frozenset()) in samples
    assert ("imagegate_webhooks_pending", frozenset()) in samples


async def test_a_deployment_cooling_down_shows_until_a_probe_succeeds() -> None:
    clock = Clock()
    upstream = Scripted(*[UpstreamError("boom")] * 3, "ok")
    route = router(clock, {"a": upstream})
    model = entry({"provider": "a"})
    deployment = {"deployment": "test-model#0:a"}
    errors = {"provider": "scripted", **deployment, "outcome": "error"}
    errors_before = REGISTRY.get_sample_value("imagegate_upstream_requests_total", errors) or 0
    with pytest.raises(UpstreamError):
        await route.generate(model, request(), "r")
    assert REGISTRY.get_sample_value("imagegate_deployment_cooldown", deployment) == 10
    errors_after = REGISTRY.get_sample_value("imagegate_upstream_requests_total", errors)
    assert errors_after == errors_before + 3

    clock.now += 11  # the cooldown is over: the next request is the probe
    await route.generate(model, request(), "r")
    assert REGISTRY.get_sample_value("imagegate_deployment_cooldown", deployment) == 0


async def test_a_tasks_spend_is_counted_once_when_it_completes(priced_gateway: Gateway) -> None:
    gateway = priced_gateway
    before = await scrape(gateway)
    created = await gateway.client.post(
        "/flux/v1/sketch",
        json={"prompt": "a red sun", "width": 256, "height": 256},
        headers=gateway.auth,
    )
    assert created.status_code == 200, created.text
    task_id = created.json()["id"]

    async def fetch() -> dict[str, Any]:
        answer = await gateway.client.get(
            "/flux/v1/get_result", params={"id": task_id}, headers=gateway.auth
        )
        body: dict[str, Any] = answer.json()
        return body

    assert (await poll(fetch, lambda body: body["status"] != "Pending"))["status"] == "Ready"
    after = await scrape(gateway)
    async with gateway.services.engine.connect() as conn:
        charged = await conn.scalar(
            sa.select(sa.func.sum(usage.c.cost_usd)).where(usage.c.request_id == task_id)
        )
    spent = value(after, "imagegate_cost_usd_total", {"model": "sketch"}) - value(
        before, "imagegate_cost_usd_total", {"model": "sketch"}
    )
    assert charged > 0
    assert spent == pytest.approx(float(charged))
    assert value(after, "imagegate_images_total", {"model": "sketch", "provider": "local"}) == (
        value(before, "imagegate_images_total", {"model": "sketch", "provider": "local"}) + 1
    )


async def test_a_database_outage_leaves_out_only_the_fleet_figures(
    gateway: Gateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def unreachable(engine: object) -> None:
        raise OSError("connection refused")

    monkeypatch.setattr(services_module, "read_fleet", unreachable)
    samples = await scrape(gateway)
    assert not any(name.startswith("imagegate_tasks") for name, _ in samples)
    assert value(samples, "imagegate_requests_total", {"route": "/metrics", "status": "200"}) > 0
