"""A Redis outage (down or hanging) costs the shared rate limits, not the service: requests
are limited per process meanwhile (logged and counted), fast, never a 500."""

from __future__ import annotations

import os
import time
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError

from imagegate.app import create_app
from imagegate.settings import Settings
from tests.conftest import ADMIN_KEY, Gateway
from tests.faults.proxy import Proxy, proxy_to

REDIS_URL = os.environ.get("IMAGEGATE_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
ROUTE = "/v1/images/generations"
BODY = {"model": "sketch", "prompt": "a red square", "size": "256x256"}


@pytest.fixture
async def redis_proxy() -> AsyncIterator[Proxy]:
    client = Redis.from_url(REDIS_URL)
    try:
        await client.ping()
    except (RedisConnectionError, OSError):
        if os.environ.get("CI") == "true":
            pytest.fail(f"Redis is required in CI but {REDIS_URL} is unreachable")
        pytest.skip("Redis is not reachable")
    finally:
        await client.aclose()
    target = urlsplit(REDIS_URL)
    with proxy_to(target.hostname or "127.0.0.1", target.port or 6379) as proxy:
        yield proxy


@pytest.fixture
def proxied_redis_url(redis_proxy: Proxy) -> str:
    return f"redis://127.0.0.1:{redis_proxy.port}{urlsplit(REDIS_URL).path}"


@pytest.fixture
async def gateway_on_redis(tmp_path: Path, proxied_redis_url: str) -> AsyncIterator[Gateway]:
    settings = Settings(
        data_dir=tmp_path / "data",
        admin_key=ADMIN_KEY,
        redis_url=proxied_redis_url,
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        _, secret = await app.state.services.keys.create(name="redis client")
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gw.test") as client:
            yield Gateway(app, client, secret)


@pytest.mark.parametrize("outage", ["cut", "freeze"])
async def test_requests_go_on_during_a_redis_outage(
    gateway_on_redis: Gateway, redis_proxy: Proxy, outage: str
) -> None:
    gateway = gateway_on_redis
    assert (await gateway.client.post(ROUTE, json=BODY, headers=gateway.auth)).status_code == 200
    getattr(redis_proxy, outage)()
    for _ in range(3):
        started = time.monotonic()
        response = await gateway.client.post(ROUTE, json=BODY, headers=gateway.auth)
        assert response.status_code == 200, response.text
        assert time.monotonic() - started < 2.0
        assert response.headers["x-ratelimit-limit-requests"]
    rate = gateway.services.rate
    assert rate.fallbacks >= 3  # type: ignore[attr-defined]
    ready = await gateway.client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"]["rate_limits"].startswith("degraded")


async def test_shared_limits_return_with_redis(
    gateway_on_redis: Gateway, redis_proxy: Proxy
) -> None:
    gateway = gateway_on_redis
    rate = gateway.services.rate
    redis_proxy.cut()
    assert (await gateway.client.post(ROUTE, json=BODY, headers=gateway.auth)).status_code == 200
    redis_proxy.restore()
    rate.retry_at = 0.0  # type: ignore[attr-defined]  # skip the breaker's cool-down
    before = rate.fallbacks  # type: ignore[attr-defined]
    assert (await gateway.client.post(ROUTE, json=BODY, headers=gateway.auth)).status_code == 200
    assert rate.fallbacks == before  # type: ignore[attr-defined]
    assert (await gateway.client.get("/readyz")).json()["checks"]["rate_limits"] == "ok"
