"""Engine creation and migrations for SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import fcntl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib import resources
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from imagegate.storage.sqlite_writes import serialize_writes


def create_engine(url: str) -> AsyncEngine:
    """An async engine; SQLite gets WAL and a busy timeout so several workers can share it."""
    if url.startswith("sqlite"):
        engine = create_async_engine(url, connect_args={"timeout": 30})
        sa.event.listen(engine.sync_engine, "connect", sqlite_pragmas)
        serialize_writes(engine)
        return engine
    # A connection attempt gives up after 5 s (asyncpg's default is 60): during an outage a
    # request gets its 503 quickly and its client retries.
    return create_async_engine(
        url,
        pool_size=10,
        max_overflow=20,
        pool_pre_ping=True,
        pool_timeout=10,
        connect_args={"timeout": 5},
    )


def sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    """WAL, NORMAL sync and a busy timeout on every new SQLite connection (a connect hook)."""
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def alembic_config() -> Config:
    config = Config()
    config.set_main_option(
        "script_location", str(resources.files("imagegate.storage") / "migrations")
    )
    return config


MIGRATION_LOCK_KEY = 0x696D67617465  # "imgate": the PostgreSQL advisory lock of migrations


async def upgrade(engine: AsyncEngine, revision: str = "head") -> None:
    """Bring the schema to ``revision`` over the engine's own connection, under a lock that
    every process migrating the same database takes first (a PostgreSQL advisory lock held to
    the end of the migrating transaction; a file lock beside a SQLite file). Any number of
    replicas may start at once on a fresh or old database: one migrates, the others wait and
    then find the schema at ``revision``."""

    def run(connection: sa.Connection) -> None:
        config = alembic_config()
        config.attributes["connection"] = connection
        command.upgrade(config, revision)

    async with _sqlite_file_lock(engine), engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            await connection.execute(
                sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY}
            )
        await connection.run_sync(run)


@asynccontextmanager
async def _sqlite_file_lock(engine: AsyncEngine) -> AsyncIterator[None]:
    """An exclusive ``flock`` on ``<database>.migrate-lock`` (nothing for other databases or an
    in-memory SQLite), waited for in a thread so the event loop keeps running."""
    database = engine.url.database
    if engine.url.get_backend_name() != "sqlite" or not database or database == ":memory:":
        yield
        return
    lock_path = Path(database).with_name(Path(database).name + ".migrate-lock")
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with lock_path.open("a") as lock_file:
        await asyncio.to_thread(fcntl.flock, lock_file.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock_file.fileno(), fcntl.LOCK_UN)


async def ping(engine: AsyncEngine) -> None:
    """Raise unless the database answers a trivial query."""
    async with engine.connect() as conn:
        await conn.execute(sa.text("SELECT 1"))


async def current_revision(engine: AsyncEngine) -> str | None:
    async with engine.connect() as connection:
        exists = await connection.run_sync(lambda c: sa.inspect(c).has_table("alembic_version"))
        if not exists:
            return None
        result = await connection.execute(sa.text("SELECT version_num FROM alembic_version"))
        return result.scalar_one_or_none()
