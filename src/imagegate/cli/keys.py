"""``imagegate keys``: create, list and revoke API keys."""

from __future__ import annotations

import asyncio
import time
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from imagegate.cli._common import DataDir, migrated_engine, settings_for
from imagegate.core.keys import ApiKey, KeyService, parse_globs

app = typer.Typer(help="API keys.", no_args_is_help=True)


@app.command("create")
def create(
    name: Annotated[str, typer.Option(help="A label for the key")] = "",
    models: Annotated[
        str | None, typer.Option(help="Comma-separated model globs, e.g. 'gpt-image-*,sketch'")
    ] = None,
    admin: Annotated[bool, typer.Option("--admin", help="May manage keys")] = False,
    data_dir: DataDir = None,
) -> None:
    """Create a key and print its secret (shown once, stored only as a hash)."""

    async def run() -> tuple[ApiKey, str]:
        async with migrated_engine(settings_for(data_dir)) as engine:
            return await KeyService(engine).create(
                name=name, models=parse_globs(models), admin=admin
            )

    key, secret = asyncio.run(run())
    typer.echo(f"created {key.id} ({'admin' if admin else 'client'} key); it is shown only once:")
    typer.echo(secret)


@app.command("list")
def list_keys(data_dir: DataDir = None) -> None:
    """List keys by id and prefix (never their secrets)."""

    async def run() -> list[ApiKey]:
        async with migrated_engine(settings_for(data_dir)) as engine:
            return await KeyService(engine).list()

    table = Table("id", "name", "prefix", "models", "admin", "created", "revoked")
    for key in asyncio.run(run()):
        table.add_row(
            key.id,
            key.name,
            key.prefix + "…",
            ",".join(key.models) if key.models else "*",
            "yes" if key.is_admin else "",
            _when(key.created_at),
            _when(key.revoked_at),
        )
    Console().print(table)


@app.command("revoke")
def revoke(key_id: str, data_dir: DataDir = None) -> None:
    """Revoke a key by id; it stops working at once (within seconds on other replicas)."""

    async def run() -> ApiKey | None:
        async with migrated_engine(settings_for(data_dir)) as engine:
            return await KeyService(engine).revoke(key_id)

    if asyncio.run(run()) is None:
        typer.echo(f"no key with id {key_id}", err=True)
        raise typer.Exit(1)
    typer.echo(f"revoked {key_id}")


def _when(timestamp: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.gmtime(timestamp)) if timestamp else ""
