"""``meta["webhook_statuses"]``: a front end chooses which status changes its clients hear."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from imagegate.storage.tables import webhook_deliveries
from tests.core.test_tasks import Recorder, make_engine, wait_for


async def _statuses(engine: AsyncEngine) -> list[str]:
    query = sa.select(webhook_deliveries.c.payload).order_by(webhook_deliveries.c.id)
    async with engine.connect() as conn:
        payloads = (await conn.execute(query)).scalars().all()
    return [orjson.loads(payload)["status"] for payload in payloads]


@pytest.mark.parametrize(
    ("meta", "expected"),
    [
        ({}, ["running", "succeeded"]),
        ({"webhook_statuses": ["succeeded", "failed", "canceled"]}, ["succeeded"]),
        ({"webhook_statuses": ["running"]}, ["running"]),
        ({"webhook_statuses": []}, []),
    ],
)
async def test_only_the_wanted_statuses_are_sent(
    engine: AsyncEngine, tmp_path: Path, meta: dict[str, list[str]], expected: list[str]
) -> None:
    tasks = make_engine(engine, tmp_path)
    tasks.register("test", Recorder())
    tasks.start()
    try:
        task = await tasks.submit(
            kind="test",
            owner_key_id="key_a",
            request={},
            meta=meta,
            webhook_url="https://hooks.example/x",
        )
        await wait_for(tasks, task.id, "succeeded")
    finally:
        await tasks.close()
    assert await _statuses(engine) == expected


class CountingSender:
    """Stands in for the webhook sender: counts how often the engine wakes it."""

    def __init__(self) -> None:
        self.wakes = 0

    def wake(self) -> None:
        self.wakes += 1


@pytest.mark.parametrize(
    ("webhook_url", "woken"), [(None, False), ("https://hooks.example/x", True)]
)
async def test_the_sender_is_woken_only_for_tasks_with_a_webhook(
    engine: AsyncEngine, tmp_path: Path, webhook_url: str | None, woken: bool
) -> None:
    sender = CountingSender()
    tasks = make_engine(engine, tmp_path, webhooks=sender)
    tasks.register("test", Recorder())
    tasks.start()
    try:
        task = await tasks.submit(
            kind="test", owner_key_id="key_a", request={}, meta={}, webhook_url=webhook_url
        )
        await wait_for(tasks, task.id, "succeeded")
    finally:
        await tasks.close()
    assert (sender.wakes > 0) == woken
