"""Webhook delivery: signed, retried with the same id, one record per try, SSRF-safe."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import orjson
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from imagegate.core.assets import AssetService
from imagegate.core.tasks import EngineSettings
from imagegate.core.webhooks import WebhookSender, signing_key
from imagegate.outbound import OutboundGuard
from imagegate.storage.blobs import LocalBlobStore
from imagegate.storage.group_commit import Batch
from imagegate.storage.repositories.assets import SqlAssetRepository
from imagegate.storage.repositories.webhook_deliveries import SqlWebhookDeliveryRepository
from imagegate.storage.repositories.webhooks import SqlWebhookOutbox
from imagegate.storage.tables import webhook_deliveries
from tests.core.test_tasks import Recorder, wait_for
from tests.receiver import receiver
from tests.sql_kit import task_engine


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(trust_env=False) as client:
        yield client


def sender(engine: AsyncEngine, http: httpx.AsyncClient, allow: list[str]) -> WebhookSender:
    guard = OutboundGuard(allow)
    return WebhookSender(
        SqlWebhookDeliveryRepository(engine),
        http,
        guard,
        b"s" * 32,
        backoff=[0.05, 0.05, 0.05],
        poll_interval=0.02,
    )


async def rows(engine: AsyncEngine) -> list[sa.RowMapping]:
    async with engine.connect() as conn:
        query = sa.select(webhook_deliveries).order_by(webhook_deliveries.c.id)
        return list((await conn.execute(query)).mappings().all())


async def add(engine: AsyncEngine, url: str, secret: str | None) -> str:
    async with engine.begin() as conn:
        return await SqlWebhookOutbox().enqueue(
            Batch(conn), url=url, secret=secret, payload={"hello": 1}, task_id=None, now=time.time()
        )


async def test_retried_after_500_with_the_same_id_and_valid_signatures(
    engine: AsyncEngine, http: httpx.AsyncClient
) -> None:
    webhooks = sender(engine, http, ["127.0.0.1/32"])
    async with receiver([500, 503]) as box:
        message_id = await add(engine, box.url, "whsec_c2VjcmV0LWtleQ==")
        webhooks.start()
        try:
            await box.wait_for(3)
            while (await rows(engine))[-1]["state"] == "pending":
                await asyncio.sleep(0.01)
        finally:
            await webhooks.close()
    assert {r.headers["webhook-id"] for r in box.received} == {message_id}
    assert all(r.signature_valid(b"secret-key") for r in box.received)
    assert orjson.loads(box.received[-1].body) == {"hello": 1}
    tries = await rows(engine)
    assert [(r["attempt"], r["state"], r["status_code"]) for r in tries] == [
        (1, "failed", 500),
        (2, "failed", 503),
        (3, "delivered", 200),
    ]


async def test_without_a_secret_the_server_key_signs(
    engine: AsyncEngine, http: httpx.AsyncClient
) -> None:
    webhooks = sender(engine, http, ["127.0.0.1/32"])
    async with receiver() as box:
        await add(engine, box.url, None)
        await webhooks.deliver_due()
    key = signing_key(webhooks.server_signing_secret())
    assert box.received[0].signature_valid(key)


async def test_gives_up_after_the_last_try(engine: AsyncEngine, http: httpx.AsyncClient) -> None:
    webhooks = sender(engine, http, ["127.0.0.1/32"])
    async with receiver([500] * 10) as box:
        await add(engine, box.url, "plain-secret")
        for _ in range(20):
            await webhooks.deliver_due(now=time.time() + 3600)
    assert len(box.received) == webhooks.max_tries == 4
    assert [r["state"] for r in await rows(engine)] == ["failed"] * 4


@pytest.mark.parametrize(
    "url",
    ["http://127.0.0.1:9/hook", "http://10.0.0.1/hook", "http://169.254.169.254/", "file:///x"],
)
async def test_private_targets_are_never_contacted(
    engine: AsyncEngine, http: httpx.AsyncClient, url: str
) -> None:
    webhooks = sender(engine, http, [])
    await add(engine, url, None)
    started = time.perf_counter()
    await webhooks.deliver_due()
    assert time.perf_counter() - started < 1
    (first, *_) = await rows(engine)
    assert first["state"] == "failed" and first["status_code"] is None and first["error"]


async def test_task_status_changes_are_posted(
    engine: AsyncEngine, http: httpx.AsyncClient, tmp_path: Path
) -> None:
    webhooks = sender(engine, http, ["127.0.0.1/32"])
    assets = AssetService(
        SqlAssetRepository(engine),
        LocalBlobStore(tmp_path),
        b"k" * 32,
        link_ttl=60,
        retention_seconds=60,
    )
    tasks = task_engine(engine, assets, webhooks, EngineSettings(poll_interval=0.02))
    tasks.register("test", Recorder())
    async with receiver() as box:
        webhooks.start()
        tasks.start()
        try:
            task = await tasks.submit(
                kind="test", owner_key_id="k", request={}, meta={}, webhook_url=box.url
            )
            await wait_for(tasks, task.id, "succeeded")
            await box.wait_for(2)
        finally:
            await tasks.close()
            await webhooks.close()
    statuses = [orjson.loads(r.body)["status"] for r in box.received]
    assert statuses == ["running", "succeeded"]
    assert len(orjson.loads(box.received[-1].body)["assets"]) == 1
