"""The task engine on SQLite and PostgreSQL: leases, exactly-once completion, cancel, modal."""

from __future__ import annotations

import asyncio
import io
import time
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from PIL import Image
from sqlalchemy.ext.asyncio import AsyncEngine

from imagegate.core.assets import AssetService
from imagegate.core.requests import GeneratedImage
from imagegate.core.task_model import TaskOutput, TaskRecord
from imagegate.core.tasks import EngineSettings, TaskEngine, TaskRun
from imagegate.core.upstream import UpstreamJob
from imagegate.errors import InvalidRequest
from imagegate.storage.blobs import LocalBlobStore
from imagegate.storage.repositories.assets import SqlAssetRepository
from imagegate.storage.tables import assets as assets_table
from imagegate.storage.tables import usage
from tests.sql_kit import task_engine


def tiny_png(colour: tuple[int, int, int]) -> GeneratedImage:
    buffer = io.BytesIO()
    Image.new("RGB", (4, 4), colour).save(buffer, "PNG")
    return GeneratedImage(buffer.getvalue(), "png", 4, 4)


@dataclass
class Recorder:
    """A handler that records every run and can be told to block or fail."""

    runs: list[str] = field(default_factory=list)
    gate: asyncio.Event | None = None
    fail: bool = False

    async def __call__(self, task: TaskRecord, run: TaskRun) -> TaskOutput:
        self.runs.append(task.id)
        await run.progress(50)
        if self.gate is not None:
            await self.gate.wait()
        if self.fail:
            raise InvalidRequest("the prompt was refused", code="bad_prompt")
        colour = (len(self.runs) * 10 % 255, 0, 0)
        return TaskOutput(images=[tiny_png(colour)], cost=Decimal("0.25"), result={"note": "ok"})


def make_engine(
    engine: AsyncEngine, tmp_path: Path, webhooks: Any = None, **settings: Any
) -> TaskEngine:
    assets = AssetService(
        SqlAssetRepository(engine),
        LocalBlobStore(tmp_path / "blobs"),
        b"k" * 32,
        link_ttl=60,
        retention_seconds=60,
    )
    settings_ = EngineSettings(poll_interval=0.05, **settings)
    return task_engine(engine, assets, webhooks, settings_)


async def wait_for(engine: TaskEngine, task_id: str, *statuses: str) -> TaskRecord:
    deadline = time.monotonic() + 10
    while True:
        task = await engine.get(task_id, None)
        if task.status in statuses:
            return task
        assert time.monotonic() < deadline, f"task stuck in {task.status}"
        await asyncio.sleep(0.02)


async def count(engine: AsyncEngine, table: sa.Table) -> int:
    async with engine.connect() as conn:
        return int((await conn.execute(sa.select(sa.func.count()).select_from(table))).scalar_one())


async def test_a_task_runs_once_and_stores_its_outputs(engine: AsyncEngine, tmp_path: Path) -> None:
    tasks = make_engine(engine, tmp_path)
    handler = Recorder()
    tasks.register("test", handler)
    tasks.start()
    try:
        task = await tasks.submit(kind="test", owner_key_id="key_a", request={"x": 1}, meta={})
        assert task.status == "queued"
        done = await wait_for(tasks, task.id, "succeeded")
    finally:
        await tasks.close()
    assert handler.runs == [task.id]
    assert done.progress == 100 and done.result is not None and done.result["note"] == "ok"
    assert len(done.asset_ids) == 1 and done.started_at and done.finished_at
    assert await count(engine, assets_table) == 1
    async with engine.connect() as conn:
        row = (await conn.execute(sa.select(usage))).mappings().one()
    assert row["cost_usd"] == Decimal("0.25") and row["request_id"] == task.id


async def test_ownership_is_enforced(engine: AsyncEngine, tmp_path: Path) -> None:
    tasks = make_engine(engine, tmp_path)
    tasks.register("test", Recorder())
    task = await tasks.submit(kind="test", owner_key_id="key_a", request={}, meta={})
    with pytest.raises(Exception, match="no such task"):
        await tasks.get(task.id, "key_b")
    assert await tasks.get_many([task.id, "nope"], "key_a") == [await tasks.get(task.id, "key_a")]
    assert await tasks.get_many([task.id], "key_b") == []


async def test_expired_lease_is_taken_over_and_only_one_completion_counts(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    first = make_engine(engine, tmp_path, lease_seconds=0.3)
    second = make_engine(engine, tmp_path, lease_seconds=0.3)
    gate = asyncio.Event()
    slow, fast = Recorder(gate=gate), Recorder()
    first.register("test", slow)
    second.register("test", fast)
    task = await first.submit(kind="test", owner_key_id="key_a", request={}, meta={})
    assert await first.claim_and_start() == 1  # first holds it, but never heart-beats
    await asyncio.sleep(0.4)
    assert await second.claim_and_start() == 1
    done = await wait_for(second, task.id, "succeeded")
    gate.set()  # the first worker finishes late: its completion must be discarded
    await asyncio.sleep(0.2)
    assert slow.runs == [task.id] and fast.runs == [task.id]
    assert done.attempts == 2
    assert await count(engine, assets_table) == 1
    assert await count(engine, usage) == 1
    await first.close()
    await second.close()


async def test_a_stopping_server_hands_its_running_tasks_on_at_once(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    """A graceful stop (a rolling deploy) neither cancels nor half-completes a running task:
    its lease ends, and the next worker's first claim runs it again."""
    first = make_engine(engine, tmp_path, lease_seconds=60)
    second = make_engine(engine, tmp_path, lease_seconds=60)
    interrupted, finisher = Recorder(gate=asyncio.Event()), Recorder()
    first.register("test", interrupted)
    second.register("test", finisher)
    task = await first.submit(kind="test", owner_key_id="key_a", request={}, meta={})
    assert await first.claim_and_start() == 1
    await wait_for(first, task.id, "running")
    await first.close()
    assert (await second.get(task.id, None)).status == "running"  # not cancelled
    assert await second.claim_and_start() == 1  # no wait for the 60 s lease
    done = await wait_for(second, task.id, "succeeded")
    await second.close()
    assert interrupted.runs == finisher.runs == [task.id]
    assert done.attempts == 2 and await count(engine, usage) == 1


async def test_two_engines_never_run_a_task_twice(engine: AsyncEngine, tmp_path: Path) -> None:
    engines = [make_engine(engine, tmp_path, concurrency=4) for _ in range(2)]
    handlers = [Recorder(), Recorder()]
    for tasks, handler in zip(engines, handlers, strict=True):
        tasks.register("test", handler)
    submitted = [
        await engines[0].submit(kind="test", owner_key_id="key_a", request={}, meta={})
        for _ in range(20)
    ]
    for tasks in engines:
        tasks.start()
    try:
        for task in submitted:
            await wait_for(engines[0], task.id, "succeeded")
    finally:
        for tasks in engines:
            await tasks.close()
    runs = handlers[0].runs + handlers[1].runs
    assert sorted(runs) == sorted(task.id for task in submitted)
    assert await count(engine, assets_table) == 20


async def test_cancel_waiting_and_running_tasks(engine: AsyncEngine, tmp_path: Path) -> None:
    tasks = make_engine(engine, tmp_path, lease_seconds=0.3, concurrency=1)
    handler = Recorder(gate=asyncio.Event())
    tasks.register("test", handler)
    running = await tasks.submit(kind="test", owner_key_id="key_a", request={}, meta={})
    waiting = await tasks.submit(kind="test", owner_key_id="key_a", request={}, meta={})
    tasks.start()
    try:
        await wait_for(tasks, running.id, "running")
        assert (await tasks.cancel(waiting.id, "key_a")).status == "canceled"
        await tasks.cancel(running.id, "key_a")
        cancelled = await wait_for(tasks, running.id, "canceled")
    finally:
        await tasks.close()
    assert cancelled.result is None and await count(engine, usage) == 0
    assert handler.runs == [running.id]


async def test_a_failure_is_recorded_and_not_charged(engine: AsyncEngine, tmp_path: Path) -> None:
    tasks = make_engine(engine, tmp_path)
    tasks.register("test", Recorder(fail=True))
    tasks.start()
    try:
        task = await tasks.submit(kind="test", owner_key_id="key_a", request={}, meta={})
        failed = await wait_for(tasks, task.id, "failed")
    finally:
        await tasks.close()
    assert failed.error == {
        "code": "bad_prompt",
        "message": "the prompt was refused",
        "status": 400,
    }
    assert await count(engine, usage) == 0 and await count(engine, assets_table) == 0


async def test_parked_tasks_wait_for_their_input(engine: AsyncEngine, tmp_path: Path) -> None:
    tasks = make_engine(engine, tmp_path)
    handler = Recorder()
    tasks.register("test", handler)
    task = await tasks.submit(
        kind="test", owner_key_id="key_a", request={}, meta={}, status="parked"
    )
    assert await tasks.claim_and_start() == 0
    resumed = await tasks.resume(task.id, "key_a", {"prompt": "now"}, {"front": "x"})
    assert resumed.status == "queued" and resumed.request == {"prompt": "now"}
    with pytest.raises(InvalidRequest):
        await tasks.resume(task.id, "key_a", {}, {})
    tasks.start()
    try:
        await wait_for(tasks, task.id, "succeeded")
    finally:
        await tasks.close()


async def test_a_task_interrupted_too_often_fails(engine: AsyncEngine, tmp_path: Path) -> None:
    tasks = make_engine(engine, tmp_path, max_attempts=2)
    handler = Recorder()
    tasks.register("test", handler)
    task = await tasks.submit(kind="test", owner_key_id="key_a", request={}, meta={})
    for ghost in ("ghost-1", "ghost-2"):  # two workers claim it and die without a heartbeat
        assert len(await tasks._store.claim(ghost, 1, time.time(), 0.01)) == 1
        await asyncio.sleep(0.05)
    tasks.start()
    try:
        failed = await wait_for(tasks, task.id, "failed")
    finally:
        await tasks.close()
    assert failed.attempts == 3 and handler.runs == []
    assert failed.error is not None and "interrupted" in failed.error["message"]


async def test_retention_sweep(engine: AsyncEngine, tmp_path: Path) -> None:
    tasks = make_engine(engine, tmp_path, retention_seconds=100)
    tasks.register("test", Recorder())
    await tasks.submit(kind="test", owner_key_id="key_a", request={}, meta={})
    assert await tasks.sweep(now=time.time() + 50) == 0
    assert await tasks.sweep(now=time.time() + 200) == 1


async def test_upstream_jobs_kept_by_a_run_are_known_to_the_next(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    """A task upstream's job, kept through the run's journal, is in the task's row: the worker
    that takes the task over after the lease ended sees it (and polls it, never submitting
    again); the first worker, its lease gone, can no longer overwrite it."""
    first = make_engine(engine, tmp_path, lease_seconds=0.3)
    second = make_engine(engine, tmp_path, lease_seconds=0.3)
    gate, seen = asyncio.Event(), []
    runs: list[TaskRun] = []

    async def submitting(task: TaskRecord, run: TaskRun) -> TaskOutput:
        runs.append(run)
        assert run.known("m#0:p/0") is None
        await run.accepted("m#0:p/0", UpstreamJob("job-1", {"status": "https://up/1"}, 2.0))
        await gate.wait()
        raise AssertionError("never resumed")

    async def resuming(task: TaskRecord, run: TaskRun) -> TaskOutput:
        seen.append(run.known("m#0:p/0"))
        return TaskOutput(images=[tiny_png((1, 2, 3))], cost=Decimal("0.25"))

    first.register("test", submitting)
    second.register("test", resuming)
    task = await first.submit(kind="test", owner_key_id="key_a", request={}, meta={})
    assert await first.claim_and_start() == 1  # never heart-beats
    while not runs:
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.4)
    assert await second.claim_and_start() == 1
    done = await wait_for(second, task.id, "succeeded")
    await runs[0].accepted("m#0:p/0", UpstreamJob("stale"))  # no lease: not written
    assert seen == [UpstreamJob("job-1", {"status": "https://up/1"}, 2.0)]
    assert (await second.get(task.id, None)).upstream_jobs == {
        "m#0:p/0": {"id": "job-1", "handles": {"status": "https://up/1"}, "poll_after": 2.0}
    }
    assert done.attempts == 2 and await count(engine, usage) == 1
    gate.set()
    await first.close()
    await second.close()
