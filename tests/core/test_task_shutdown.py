"""Stopping a task engine on PostgreSQL and SQLite: every task it claimed is handed back, even
one whose claim committed while it was closing, and a deadlock on the way does not stop it."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine

from imagegate.app import create_app
from imagegate.core.usage import UsageRow
from imagegate.settings import Settings
from imagegate.storage import db
from imagegate.storage.group_commit import Batch
from imagegate.storage.tables import tasks as tasks_table
from imagegate.storage.tables import usage
from imagegate.storage.task_store import TaskStore
from tests.conftest import ADMIN_KEY
from tests.core.test_tasks import Recorder, make_engine


async def lease_of(engine: AsyncEngine, task_id: str) -> tuple[str, float | None]:
    async with engine.connect() as conn:
        row = (
            await conn.execute(
                sa.select(tasks_table.c.status, tasks_table.c.lease_expires_at).where(
                    tasks_table.c.id == task_id
                )
            )
        ).one()
    return row[0], row[1]


async def test_a_claim_committed_during_close_is_handed_back(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    first = make_engine(engine, tmp_path, lease_seconds=60)
    first.register("test", Recorder())
    task = await first.submit(kind="test", owner_key_id="key_a", request={}, meta={})
    # The claim loop was cancelled while its claim's batch committed: the tasks are ours in
    # the database but no runner was started for them.
    await first._store.claim(first.worker_id, 4, time.time(), 60)
    await first.close()
    status, expires = await lease_of(engine, task.id)
    assert status == "running" and expires is not None and expires <= time.time()


async def test_a_deadlock_while_handing_back_is_retried(
    engine: AsyncEngine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = make_engine(engine, tmp_path, lease_seconds=60)
    first.register("test", Recorder(gate=asyncio.Event()))
    task = await first.submit(kind="test", owner_key_id="key_a", request={}, meta={})
    assert await first.claim_and_start() == 1
    store = first._store
    assert isinstance(store, TaskStore)
    original = store.write
    failures = [OperationalError("UPDATE tasks", {}, Exception("deadlock detected"))]

    async def deadlocking(job: Any) -> Any:
        if failures:
            raise failures.pop()
        return await original(job)

    monkeypatch.setattr(store, "write", deadlocking)
    await first.close()
    _, expires = await lease_of(engine, task.id)
    assert expires is not None and expires <= time.time()


async def test_every_close_step_runs_when_one_fails(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", admin_key=ADMIN_KEY)
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        services = app.state.services

        async def broken() -> None:
            raise OperationalError("UPDATE tasks", {}, Exception("deadlock detected"))

        services.tasks.close = broken
        services.usage.record(
            UsageRow(request_id="req_last", key_id=None, model=None, route="/x", status=200,
                     latency_ms=1.0)
        )  # fmt: skip
    check = db.create_engine(settings.resolved_database_url)
    async with check.connect() as conn:
        ids = (await conn.execute(sa.select(usage.c.request_id))).scalars().all()
    await check.dispose()
    assert "req_last" in ids


async def test_handing_back_waits_for_a_batch_that_locks_the_same_rows(
    postgres_url: str, tmp_path: Path
) -> None:
    """A group-commit batch holds one task row and is about to take the other while the server
    stops: the hand-back queues behind it instead of locking the rows in the other order (on
    PostgreSQL that was a deadlock, and the loser's error escaped close())."""
    engine = db.create_engine(postgres_url)
    await db.upgrade(engine)
    try:
        first = make_engine(engine, tmp_path, lease_seconds=60)
        first.register("test", Recorder())
        a = await first.submit(kind="test", owner_key_id="key_a", request={}, meta={})
        b = await first.submit(kind="test", owner_key_id="key_a", request={}, meta={})
        await first._store.claim(first.worker_id, 2, time.time(), 60)
        store = first._store

        assert isinstance(store, TaskStore)

        async def backwards(batch: Batch) -> None:
            for task_id in (b.id, a.id):
                await batch.conn.execute(
                    sa.update(tasks_table)
                    .where(tasks_table.c.id == task_id)
                    .values(progress=tasks_table.c.progress + 1)
                )
                await asyncio.sleep(0.3)

        batch = asyncio.create_task(store.write(backwards))
        await asyncio.sleep(0.1)
        await first.close()
        await batch
        for task in (a, b):
            _, expires = await lease_of(engine, task.id)
            assert expires is not None and expires <= time.time()
    finally:
        await engine.dispose()
