"""Helpers shared by the command groups: settings from options, an engine for one command, the
key service on it."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated

import typer
from sqlalchemy.ext.asyncio import AsyncEngine

from imagegate.core.keys import KeyService
from imagegate.settings import Settings
from imagegate.storage import db
from imagegate.storage.group_commit import GroupCommit
from imagegate.storage.repositories.billing import sql_billing
from imagegate.storage.repositories.keys import SqlKeyRepository

DataDir = Annotated[
    Path | None,
    typer.Option(
        "--data-dir",
        help="Holds the SQLite database, the assets and the server secret "
        "[env: IMAGEGATE_DATA_DIR; default ./imagegate-data]",
        show_default=False,
    ),
]


def settings_for(data_dir: Path | None) -> Settings:
    """Settings from the environment; ``--data-dir`` wins and is passed on to worker processes."""
    if data_dir is not None:
        os.environ["IMAGEGATE_DATA_DIR"] = str(data_dir)
    return Settings()


@asynccontextmanager
async def migrated_engine(settings: Settings) -> AsyncIterator[AsyncEngine]:
    """An engine on an up-to-date schema, disposed afterwards."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = db.create_engine(settings.resolved_database_url)
    try:
        await db.upgrade(engine)
        yield engine
    finally:
        await engine.dispose()


@asynccontextmanager
async def key_service(engine: AsyncEngine) -> AsyncIterator[KeyService]:
    """The key service on ``engine`` (without the configured admin key), its writer closed
    afterwards."""
    writer = GroupCommit(engine)
    try:
        yield KeyService(SqlKeyRepository(engine), writer, sql_billing(engine, writer))
    finally:
        await writer.close()
