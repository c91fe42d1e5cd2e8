"""Any number of replicas may start at once: migrations run under a database lock (PostgreSQL
advisory lock, a file lock for SQLite), on a fresh database and on an old one."""

from __future__ import annotations

import asyncio
import os
import subprocess
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.script import ScriptDirectory

from imagegate.storage import db
from tests.cli.test_serve import EXECUTABLE

HEAD = ScriptDirectory.from_config(db.alembic_config()).get_current_head()


async def upgrade_at_once(url: str, engines: int) -> None:
    created = [db.create_engine(url) for _ in range(engines)]
    try:
        await asyncio.gather(*(db.upgrade(engine) for engine in created))
    finally:
        for engine in created:
            await engine.dispose()


async def schema_at_head(url: str) -> None:
    engine = db.create_engine(url)
    try:
        assert await db.current_revision(engine) == HEAD
        async with engine.connect() as conn:
            versions = await conn.execute(sa.text("SELECT count(*) FROM alembic_version"))
            assert versions.scalar_one() == 1
            tables = await conn.run_sync(lambda c: set(sa.inspect(c).get_table_names()))
        assert {"api_keys", "assets", "files", "tasks", "ledger"} <= tables
    finally:
        await engine.dispose()


@pytest.mark.postgres
async def test_eight_engines_migrate_a_fresh_postgres_database_at_once(postgres_url: str) -> None:
    await upgrade_at_once(postgres_url, 8)
    await schema_at_head(postgres_url)


@pytest.mark.postgres
async def test_engines_upgrade_an_old_postgres_database_at_once(postgres_url: str) -> None:
    engine = db.create_engine(postgres_url)
    await db.upgrade(engine, "0002")
    await engine.dispose()
    await upgrade_at_once(postgres_url, 6)
    await schema_at_head(postgres_url)


def migrate_in_processes(url: str, processes: int, data_dir: Path) -> None:
    """``imagegate db upgrade`` in ``processes`` processes started together."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("IMAGEGATE_")}
    env["IMAGEGATE_DATABASE_URL"] = url
    started = [
        subprocess.Popen(
            [str(EXECUTABLE), "db", "upgrade", "--data-dir", str(data_dir / str(index))],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=env,
        )
        for index in range(processes)
    ]
    for process in started:
        output, _ = process.communicate(timeout=120)
        assert process.returncode == 0, output.decode()
        assert f"database at revision {HEAD}" in output.decode()


@pytest.mark.postgres
async def test_processes_migrate_a_fresh_postgres_database_at_once(
    postgres_url: str, tmp_path: Path
) -> None:
    await asyncio.to_thread(migrate_in_processes, postgres_url, 3, tmp_path)
    await schema_at_head(postgres_url)


async def test_processes_migrate_a_fresh_sqlite_file_at_once(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'shared.db'}"
    await asyncio.to_thread(migrate_in_processes, url, 3, tmp_path)
    await schema_at_head(url)
