"""A request refused after its quote was held gives the hold back exactly once and leaves
exactly one usage row, on every path that holds: a synchronous run, a task-style submit, one of
several requests prepared together, a Midjourney submit and a Midjourney modal.
(The relay's two paths are in ``test_midjourney_relay.py``.)"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from imagegate.app import create_app
from imagegate.errors import StorageUnavailable, UpstreamError
from imagegate.settings import Settings
from tests.api.fronts_kit import data_uri, encode
from tests.api.mj_kit import SMALL, imagine, press, run_button
from tests.api.refusal_kit import ReleaseSpy, assert_given_back_once, error_rows
from tests.conftest import ADMIN_KEY, Gateway

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
    """A gateway where every sketch request (and Midjourney task) holds exactly $0.10."""
    config = tmp_path / "config.toml"
    config.write_text(PRICED)
    settings = Settings(
        data_dir=tmp_path / "data",
        admin_key=ADMIN_KEY,
        config=config,
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


def pause_workers(gateway: Gateway) -> None:
    """Tasks stay queued (and keep their holds): the engine has no free slot to claim them."""
    engine = gateway.services.tasks
    engine.settings = replace(engine.settings, concurrency=0)


async def test_a_failed_synchronous_run(priced: Gateway, monkeypatch: pytest.MonkeyPatch) -> None:
    key_id, headers = await make_key(priced, credit_usd=1.0)
    spy = ReleaseSpy(priced, monkeypatch)
    provider = priced.services.images._registry.get("local")

    async def broken(*_: object, **__: object) -> object:
        raise UpstreamError("the upstream answered garbage")

    monkeypatch.setattr(provider, "generate", broken)
    response = await priced.client.post("/v1/images/generations", json=BODY, headers=headers)
    assert response.status_code == 502
    await assert_given_back_once(priced, spy, key_id)
    assert await error_rows(priced, key_id) == [(502, "sketch")]


async def test_a_task_submit_the_engine_refuses(
    priced: Gateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    key_id, headers = await make_key(priced, credit_usd=1.0, max_concurrent=1)
    pause_workers(priced)
    spy = ReleaseSpy(priced, monkeypatch)
    async_body = {**BODY, "async": True}
    first = await priced.client.post("/v1/images/generations", json=async_body, headers=headers)
    assert first.status_code == 202, first.text
    second = await priced.client.post("/v1/images/generations", json=async_body, headers=headers)
    assert second.status_code == 429, second.text  # one unfinished task is the key's limit
    await assert_given_back_once(priced, spy, key_id, still_held=1)
    assert await error_rows(priced, key_id) == [(429, "sketch")]


async def test_one_of_several_prepared_requests_refused(
    priced: Gateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    key_id, headers = await make_key(priced, credit_usd=0.1)  # enough for one of the two
    spy = ReleaseSpy(priced, monkeypatch)
    body = {"model": "sketch", "prompt": "a house", "num_results": 2}
    response = await priced.client.post("/bria/text-to-image", json=body, headers=headers)
    assert response.status_code == 429, response.text
    await assert_given_back_once(priced, spy, key_id)
    assert await error_rows(priced, key_id) == [(429, "sketch")]


async def test_a_midjourney_submit_the_engine_refuses(
    priced: Gateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    key_id, headers = await make_key(priced, credit_usd=1.0, max_concurrent=1)
    pause_workers(priced)
    spy = ReleaseSpy(priced, monkeypatch)
    body = {"prompt": f"a cat {SMALL}"}
    first = await priced.client.post("/mj/submit/imagine", json=body, headers=headers)
    assert first.json()["code"] == 1, first.text
    second = await priced.client.post("/mj/submit/imagine", json=body, headers=headers)
    assert second.status_code == 429, second.text
    await assert_given_back_once(priced, spy, key_id, still_held=1)
    assert await error_rows(priced, key_id) == [(429, "sketch")]


async def test_a_midjourney_modal_that_cannot_be_queued(
    priced: Gateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    key_id, headers = await make_key(priced, credit_usd=1.0)
    grid = await imagine(priced.client, f"a cat {SMALL}", headers)
    upscaled = await run_button(priced.client, grid, "U1", headers)
    parked = await press(priced.client, upscaled, "Vary (Region)", headers)
    assert parked["code"] == 21

    async def down(*_: object, **__: object) -> object:
        await asyncio.sleep(0)
        raise StorageUnavailable("the database is down")

    spy = ReleaseSpy(priced, monkeypatch)
    monkeypatch.setattr(priced.services.tasks, "resume", down)
    mask = data_uri(encode(Image.new("L", (256, 256), 255)))
    body = {"taskId": parked["result"], "prompt": "a hat", "maskBase64": mask}
    response = await priced.client.post("/mj/submit/modal", json=body, headers=headers)
    assert response.status_code == 503, response.text
    await assert_given_back_once(priced, spy, key_id)
    assert await error_rows(priced, key_id) == [(503, "sketch")]
