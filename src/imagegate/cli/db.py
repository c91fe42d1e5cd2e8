"""``imagegate db``: schema migrations."""

from __future__ import annotations

import asyncio

import typer

from imagegate.cli._common import DataDir, migrated_engine, settings_for
from imagegate.storage import db

app = typer.Typer(help="Database schema.", no_args_is_help=True)


@app.command("upgrade")
def upgrade(data_dir: DataDir = None) -> None:
    """Apply every pending migration."""

    async def run() -> str | None:
        async with migrated_engine(settings_for(data_dir)) as engine:
            return await db.current_revision(engine)

    typer.echo(f"database at revision {asyncio.run(run())}")
