"""Engine creation and migrations for SQLite and PostgreSQL."""

from __future__ import annotations

from importlib import resources
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


async def upgrade(engine: AsyncEngine, revision: str = "head") -> None:
    """Bring the schema to ``revision`` over the engine's own connection."""

    def run(connection: sa.Connection) -> None:
        config = alembic_config()
        config.attributes["connection"] = connection
        command.upgrade(config, revision)

    async with engine.begin() as connection:
        await connection.run_sync(run)


async def current_revision(engine: AsyncEngine) -> str | None:
    async with engine.connect() as connection:
        exists = await connection.run_sync(lambda c: sa.inspect(c).has_table("alembic_version"))
        if not exists:
            return None
        result = await connection.execute(sa.text("SELECT version_num FROM alembic_version"))
        return result.scalar_one_or_none()
