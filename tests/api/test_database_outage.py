"""A PostgreSQL outage answers 503 with Retry-After in each route's own envelope (Midjourney's
submit routes in their business shape too), never a 500; the gateway recovers by itself."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy.engine import make_url

from imagegate.app import create_app
from imagegate.settings import Settings
from tests.conftest import ADMIN_KEY, Gateway
from tests.faults.proxy import Proxy, proxy_to

IMAGE = {"model": "sketch", "prompt": "a red square", "size": "256x256"}
GEMINI = {"contents": [{"parts": [{"text": "a red square"}]}]}


@pytest.fixture
def db_proxy(postgres_url: str) -> Iterator[tuple[Proxy, str]]:
    url = make_url(postgres_url)
    with proxy_to(url.host or "127.0.0.1", url.port or 5432) as proxy:
        yield (
            proxy,
            url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False),
        )


@pytest.fixture
async def on_proxy(tmp_path: Path, db_proxy: tuple[Proxy, str]) -> AsyncIterator[Gateway]:
    settings = Settings(
        data_dir=tmp_path / "data",
        admin_key=ADMIN_KEY,
        database_url=db_proxy[1],
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        _, secret = await app.state.services.keys.create(name="outage client")
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gw.test") as client:
            yield Gateway(app, client, secret)


def assert_retryable(response: httpx.Response) -> None:
    assert response.status_code == 503, response.text
    assert int(response.headers["retry-after"]) >= 1


async def test_every_front_answers_503_while_the_database_is_down(
    on_proxy: Gateway, db_proxy: tuple[Proxy, str]
) -> None:
    gateway, proxy = on_proxy, db_proxy[0]
    first = await gateway.client.post("/v1/images/generations", json=IMAGE, headers=gateway.auth)
    assert first.status_code == 200
    proxy.cut()

    openai = await gateway.client.post("/v1/images/generations", json=IMAGE, headers=gateway.auth)
    assert_retryable(openai)
    assert openai.json()["error"]["type"] == "upstream_error"
    assert openai.json()["error"]["code"] == "database_unavailable"

    keyed = await gateway.client.post(
        "/v1/images/generations", json=IMAGE, headers={**gateway.auth, "Idempotency-Key": "k1"}
    )
    assert_retryable(keyed)

    gemini = await gateway.client.post(
        "/v1beta/models/sketch:generateContent", json=GEMINI, headers=gateway.auth
    )
    assert_retryable(gemini)
    assert gemini.json()["error"]["status"] == "UNAVAILABLE"

    mj = await gateway.client.post(
        "/mj/submit/imagine", json={"prompt": "a red square"}, headers=gateway.auth
    )
    assert_retryable(mj)
    assert mj.json()["code"] == 23 and mj.json()["result"] is None

    flux = await gateway.client.post(
        "/flux/v1/sketch", json={"prompt": "a red square"}, headers=gateway.auth
    )
    assert_retryable(flux)
    assert flux.json()["error"]["code"] == "database_unavailable"

    stranger = await gateway.client.get("/v1/models", headers={"Authorization": "Bearer nope"})
    assert_retryable(stranger)

    assert (await gateway.client.get("/readyz")).status_code == 503

    proxy.restore()
    again = await gateway.client.post("/v1/images/generations", json=IMAGE, headers=gateway.auth)
    assert again.status_code == 200, again.text


async def test_a_full_asset_disk_is_a_503(
    gateway: Gateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def full(*_: object, **__: object) -> object:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(gateway.services.assets, "write_blobs", full)
    response = await gateway.client.post("/v1/images/generations", json=IMAGE, headers=gateway.auth)
    assert_retryable(response)
    assert response.json()["error"]["code"] == "storage_unavailable"
