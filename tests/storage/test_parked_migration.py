"""Migration 0009: tasks stored as ``modal`` (the engine's old word) become ``parked``, and
resume as parked tasks; a downgrade turns them back."""

from __future__ import annotations

import time
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from sqlalchemy.ext.asyncio import AsyncEngine

from imagegate.core.assets import AssetService
from imagegate.core.task_model import TaskOutput, TaskRecord
from imagegate.core.tasks import EngineSettings, TaskRun
from imagegate.storage import db
from imagegate.storage.blobs import LocalBlobStore
from imagegate.storage.repositories.assets import SqlAssetRepository
from imagegate.storage.tables import tasks
from tests.sql_kit import task_engine


async def _downgrade(engine: AsyncEngine, revision: str) -> None:
    def run(connection: sa.Connection) -> None:
        config = db.alembic_config()
        config.attributes["connection"] = connection
        command.downgrade(config, revision)

    async with engine.begin() as connection:
        await connection.run_sync(run)


async def _insert(engine: AsyncEngine, task_id: str, status: str) -> None:
    now = time.time()
    async with engine.begin() as conn:
        await conn.execute(
            tasks.insert().values(
                id=task_id, kind="test", owner_key_id="key_a", status=status, request={},
                meta={}, created_at=now, updated_at=now,
            )
        )  # fmt: skip


async def _statuses(engine: AsyncEngine) -> dict[str, str]:
    async with engine.connect() as conn:
        rows = await conn.execute(sa.select(tasks.c.id, tasks.c.status))
        return {row.id: row.status for row in rows}


async def test_modal_rows_become_parked_and_resume(database_url: str, tmp_path: Path) -> None:
    engine = db.create_engine(database_url)
    try:
        await db.upgrade(engine, "0008")
        await _insert(engine, "t-waiting", "modal")
        await _insert(engine, "t-queued", "queued")
        await db.upgrade(engine)
        assert await _statuses(engine) == {"t-waiting": "parked", "t-queued": "queued"}

        assets = AssetService(
            SqlAssetRepository(engine), LocalBlobStore(tmp_path / "blobs"), b"k" * 32, link_ttl=60,
            retention_seconds=60,
        )  # fmt: skip
        engine_tasks = task_engine(engine, assets, None, EngineSettings())

        async def handler(task: TaskRecord, run: TaskRun) -> TaskOutput:  # pragma: no cover
            raise AssertionError("no worker runs here")

        engine_tasks.register("test", handler)
        resumed = await engine_tasks.resume("t-waiting", "key_a", {"prompt": "now"}, {})
        assert resumed.status == "queued" and resumed.request == {"prompt": "now"}

        await _insert(engine, "t-parked", "parked")
        await _downgrade(engine, "0008")
        assert await _statuses(engine) == {
            "t-waiting": "queued",
            "t-queued": "queued",
            "t-parked": "modal",
        }
    finally:
        await engine.dispose()
