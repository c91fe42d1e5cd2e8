"""A gateway on an S3-compatible bucket (moto on loopback): images, uploads and task inputs live
there, links stream or redirect, and a bucket that is down is a 503 that loses nothing."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from imagegate.app import create_app
from imagegate.core.blobs import BlobBody, BlobStore
from imagegate.core.requests import GeneratedImage
from imagegate.core.task_model import TaskOutput
from imagegate.errors import StorageUnavailable
from imagegate.services import Services
from imagegate.settings import Settings
from tests.api.fronts_kit import data_uri, decode, picture, poll
from tests.api.mj_kit import SMALL, imagine
from tests.conftest import ADMIN_KEY, Gateway
from tests.s3_kit import S3Server

GENERATE = {"model": "sketch", "prompt": "a house", "size": "256x256", "response_format": "url"}


def png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (16, 16), "red").save(out, "PNG")
    return out.getvalue()


@pytest.fixture
def redirect() -> bool:
    return False


@pytest.fixture
def settings(tmp_path: Path, s3_bucket: str, redirect: bool) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        admin_key=ADMIN_KEY,
        storage_url=f"s3://{s3_bucket}/gateway",
        storage_redirect=redirect,
    )


async def gateway_on(settings: Settings) -> AsyncIterator[Gateway]:
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        services: Services = app.state.services
        _, secret = await services.keys.create(name="test client")
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway.test") as client:
            yield Gateway(app, client, secret)


async def test_images_and_uploads_live_in_the_bucket_not_on_disk(
    gateway: Gateway, s3_server: S3Server, s3_bucket: str, tmp_path: Path
) -> None:
    assert (await gateway.client.get("/readyz")).json()["checks"]["storage"] == "ok"
    made = await gateway.client.post("/v1/images/generations", json=GENERATE, headers=gateway.auth)
    assert made.status_code == 200, made.text
    download = await gateway.client.get(made.json()["data"][0]["url"])
    assert download.status_code == 200 and download.headers["content-type"] == "image/png"
    assert int(download.headers["content-length"]) == len(download.content)
    assert Image.open(io.BytesIO(download.content)).size == (256, 256)

    data = png()
    upload = await gateway.client.post(
        "/v1/files",
        files={"file": ("in.png", data, "image/png")},
        data={"purpose": "vision"},
        headers=gateway.auth,
    )
    file_id = upload.json()["id"]
    content = await gateway.client.get(f"/v1/files/{file_id}/content", headers=gateway.auth)
    assert content.content == data

    keys = [key for key in s3_server.keys(s3_bucket) if not key.endswith(".readyz")]
    assert len(keys) == 2 and all(key.startswith("gateway/") for key in keys)
    assert not (tmp_path / "data" / "assets").exists()


async def test_a_task_keeps_its_input_image_in_the_bucket(
    gateway: Gateway, s3_server: S3Server, s3_bucket: str
) -> None:
    body = {"prompt": "add a red heart", "input_image": data_uri(picture((256, 256)))}
    created = await gateway.client.post(
        "/flux/v1/imagegate/sketch", json=body, headers=gateway.auth
    )
    assert created.status_code == 200, created.text
    task = await gateway.services.tasks.get(created.json()["id"], None)
    digest = task.request["images"][0]["sha256"]
    assert f"gateway/{digest[:2]}/{digest[2:4]}/{digest}" in s3_server.keys(s3_bucket)

    async def fetch() -> dict[str, Any]:
        answer = await gateway.client.get(
            "/flux/v1/get_result", params={"id": task.id}, headers=gateway.auth
        )
        result: dict[str, Any] = answer.json()
        return result

    done = await poll(fetch, lambda result: result["status"] != "Pending")
    assert done["status"] == "Ready", done
    sample = await gateway.client.get(done["result"]["sample"])
    assert decode(sample.content).size == (256, 256)


@pytest.mark.parametrize("redirect", [True])
async def test_redirect_answers_a_valid_link_with_a_presigned_url(gateway: Gateway) -> None:
    made = await gateway.client.post("/v1/images/generations", json=GENERATE, headers=gateway.auth)
    link = made.json()["data"][0]["url"]
    answer = await gateway.client.get(link)
    assert answer.status_code == 302, answer.text
    location = answer.headers["location"]
    assert "X-Amz-Signature=" in location and "X-Amz-Expires=" in location
    expires = int(httpx.URL(location).params["X-Amz-Expires"])
    assert 0 < expires <= 300
    async with httpx.AsyncClient() as outside:
        image = await outside.get(location)
    assert image.status_code == 200 and image.content[:4] == b"\x89PNG"
    bad = await gateway.client.get(link.replace("sig=", "sig=0"))
    assert bad.status_code == 403  # an invalid link never reaches the bucket


@pytest.mark.parametrize("redirect", [True])
async def test_a_midjourney_image_link_redirects_too(gateway: Gateway) -> None:
    task = await imagine(gateway.client, f"a boat {SMALL}", gateway.auth)
    answer = await gateway.client.get(task["imageUrl"])
    assert answer.status_code == 302 and "X-Amz-Signature=" in answer.headers["location"]
    async with httpx.AsyncClient() as outside:
        image = await outside.get(answer.headers["location"])
    assert image.status_code == 200 and image.content[:4] == b"\x89PNG"


async def test_a_bucket_that_is_down_is_not_ready_and_refuses_with_503_and_retry_after(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    async for gateway in gateway_on(settings):
        ready = await gateway.client.get("/readyz")
        assert ready.status_code == 503 and ready.json()["checks"]["storage"].startswith("error")
        made = await gateway.client.post(
            "/v1/images/generations", json=GENERATE, headers=gateway.auth
        )
        assert made.status_code == 503 and made.headers["retry-after"] == "5"
        assert made.json()["error"]["code"] == "storage_unavailable"
        upload = await gateway.client.post(
            "/v1/files",
            files={"file": ("in.png", png(), "image/png")},
            data={"purpose": "vision"},
            headers=gateway.auth,
        )
        assert upload.status_code == 503 and "retry-after" in upload.headers


class Outage:
    """The port in front of a real store, which a test can take down and bring back."""

    def __init__(self, store: BlobStore) -> None:
        self.store = store
        self.down = True
        self.refused = 0

    def _gate(self) -> None:
        if self.down:
            self.refused += 1
            raise StorageUnavailable()

    async def put(self, data: bytes, content_type: str) -> str:
        self._gate()
        return await self.store.put(data, content_type)

    async def get(self, digest: str) -> bytes | None:
        self._gate()
        return await self.store.get(digest)

    async def open(self, digest: str) -> BlobBody | None:
        self._gate()
        return await self.store.open(digest)

    async def delete(self, digest: str) -> None:
        self._gate()
        await self.store.delete(digest)

    async def put_rendition(self, digest: str, name: str, data: bytes, content_type: str) -> None:
        self._gate()
        await self.store.put_rendition(digest, name, data, content_type)

    async def open_rendition(self, digest: str, name: str) -> BlobBody | None:
        self._gate()
        return await self.store.open_rendition(digest, name)

    async def presign(self, digest: str, ttl: int) -> str | None:
        return await self.store.presign(digest, ttl)

    async def check(self) -> None:
        self._gate()

    async def close(self) -> None:
        await self.store.close()


async def test_a_task_waits_for_the_bucket_and_stores_its_output_once(gateway: Gateway) -> None:
    services = gateway.services
    tasks = services.tasks
    outage = Outage(services.assets._blobs)
    services.assets._blobs = outage

    async def handler(task: object, run: object) -> TaskOutput:
        image = GeneratedImage(data=png(), output_format="png", width=16, height=16)
        return TaskOutput(images=[image], model="sketch")

    tasks.register("outage-test", handler)
    key_id = (await services.keys.list(include_revoked=False))[0].id
    task = await tasks.submit(kind="outage-test", owner_key_id=key_id, request={}, meta={})
    while outage.refused < 2:
        await asyncio.sleep(0.05)
    assert (await tasks.get(task.id, None)).status == "running"
    outage.down = False
    for _ in range(200):
        done = await tasks.get(task.id, None)
        if done.terminal:
            break
        await asyncio.sleep(0.05)
    assert done.status == "succeeded" and len(done.asset_ids) == 1
    assert await services.assets.read(done.asset_ids[0]) == png()
