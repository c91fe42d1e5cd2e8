"""A task's webhooks arrive in the order they were queued, retries keeping their place."""

from __future__ import annotations

import time

import httpx
import orjson
from sqlalchemy.ext.asyncio import AsyncEngine

from imagegate.storage.group_commit import Batch
from imagegate.storage.repositories.webhooks import SqlWebhookOutbox
from tests.core.test_webhooks import sender
from tests.receiver import receiver


async def test_a_later_status_waits_for_an_earlier_ones_retry(engine: AsyncEngine) -> None:
    async with httpx.AsyncClient(trust_env=False) as http, receiver([500]) as box:
        webhooks = sender(engine, http, ["127.0.0.1/32"])
        async with engine.begin() as conn:
            for status in ("IN_PROGRESS", "SUCCESS"):
                await SqlWebhookOutbox().enqueue(
                    Batch(conn),
                    url=box.url,
                    secret=None,
                    payload={"status": status},
                    task_id="task-1",
                    now=time.time(),
                )
        webhooks.start()
        try:
            await box.wait_for(3)
        finally:
            await webhooks.close()
    statuses = [orjson.loads(r.body)["status"] for r in box.received]
    assert statuses == ["IN_PROGRESS", "IN_PROGRESS", "SUCCESS"]
