"""Health, OpenAPI, docs, unknown routes and the body-size limit."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from imagegate.app import GC_GEN0_THRESHOLD, create_app
from imagegate.settings import Settings
from imagegate.storage import db
from tests.conftest import Gateway


async def test_health_and_readiness(gateway: Gateway) -> None:
    assert (await gateway.client.get("/healthz")).json() == {"status": "ok"}
    ready = await gateway.client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"database": "ok", "storage": "ok", "rate_limits": "ok"}


async def test_readiness_fails_when_the_database_is_unreachable(gateway: Gateway) -> None:
    working = gateway.services.engine
    gateway.services.engine = db.create_engine("sqlite+aiosqlite:////nonexistent/dir/x.db")
    try:
        response = await gateway.client.get("/readyz")
    finally:
        await gateway.services.engine.dispose()
        gateway.services.engine = working
    assert response.status_code == 503
    assert response.json()["checks"]["database"].startswith("error")


async def test_openapi_describes_the_routes(gateway: Gateway) -> None:
    spec = (await gateway.client.get("/openapi.json")).json()
    for path in [
        "/v1/images/generations",
        "/api/models",
        "/v1/models",
        "/files/{asset_id}",
        "/admin/keys",
    ]:
        assert path in spec["paths"], path
    body = spec["paths"]["/v1/images/generations"]["post"]["requestBody"]
    assert "prompt" in body["content"]["application/json"]["schema"]["properties"]
    docs = await gateway.client.get("/docs")
    assert docs.status_code == 200 and "swagger" in docs.text.lower()


async def test_unknown_route_is_404_in_envelope(gateway: Gateway) -> None:
    response = await gateway.client.get("/v1/nothing-here", headers=gateway.auth)
    assert response.status_code == 404
    assert response.json()["error"]["type"] == "not_found_error"


async def test_oversize_body_is_413_before_reading(gateway: Gateway) -> None:
    limit = gateway.services.settings.max_body_bytes
    response = await gateway.client.post(
        "/v1/images/generations",
        content=b"x",
        headers={**gateway.auth, "content-length": str(limit + 1)},
    )
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "body_too_large"


async def test_oversize_chunked_body_is_413(gateway: Gateway) -> None:
    limit = gateway.services.settings.max_body_bytes

    async def chunks() -> AsyncIterator[bytes]:
        chunk = b"x" * (1024 * 1024)
        for _ in range(limit // len(chunk) + 2):
            yield chunk

    response = await gateway.client.post(
        "/v1/images/generations", content=chunks(), headers=gateway.auth
    )
    assert response.status_code == 413


async def test_start_up_freezes_what_it_built_and_collects_the_young_generation_less_often(
    tmp_path: Path,
) -> None:
    threshold = gc.get_threshold()
    app = create_app(Settings(data_dir=tmp_path, gc_tuning=True))
    try:
        async with app.router.lifespan_context(app):
            assert gc.get_freeze_count() > 0
            assert gc.get_threshold()[0] == GC_GEN0_THRESHOLD
    finally:
        gc.unfreeze()
        gc.set_threshold(*threshold)


def test_direct_routes_are_declared_to_fastapi_with_the_same_endpoints() -> None:
    """The routes answered without FastAPI's router still appear in OpenAPI, unchanged."""
    from fastapi.routing import APIRoute

    from imagegate.app import FRONTS

    declared = {
        (method, route.path): route.endpoint
        for front in FRONTS
        for router in front.routers
        for route in router.routes
        if isinstance(route, APIRoute)
        for method in route.methods or ()
    }
    direct = [route for front in FRONTS for route in front.direct_routes]
    assert ("POST", "/v1/images/generations") in direct
    for route in direct:
        assert route in declared, route


async def test_a_crash_in_a_direct_route_is_a_500_in_its_envelope(
    gateway: Gateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def crash(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(gateway.services.images, "prepare", crash)
    transport = httpx.ASGITransport(app=gateway.app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway.test") as client:
        response = await client.post(
            "/v1/images/generations", json={"prompt": "a cat"}, headers=gateway.auth
        )
    assert response.status_code == 500
    assert response.json()["error"]["type"] == "server_error"
    assert "boom" not in response.text
