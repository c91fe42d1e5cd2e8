"""``imagegate serve``: migrate, make sure an admin key exists, then run uvicorn."""

from __future__ import annotations

import asyncio
import copy
import logging
import os
from typing import Annotated, Any

import typer
import uvicorn

from imagegate.cli._common import DataDir, key_service, migrated_engine, settings_for
from imagegate.observability.multiproc import multiprocess_dir
from imagegate.settings import Settings


def serve(
    host: Annotated[str, typer.Option(help="Interface to bind")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to bind")] = 8000,
    workers: Annotated[
        str,
        typer.Option(
            envvar="IMAGEGATE_WORKERS",
            help="Worker processes: a number, or 'auto' for one per CPU core (production)",
        ),
    ] = "1",
    data_dir: DataDir = None,
) -> None:
    """Run the gateway (embedded default: SQLite, local files and the built-in renderer)."""
    count = worker_count(workers)
    settings = settings_for(data_dir)
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    secret = asyncio.run(_bootstrap(settings))
    if secret:
        typer.echo(f"Created an admin key (shown only once, stored as a hash):\n  {secret}")
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host  # noqa: S104 - only displayed
    typer.echo(f"Web console: http://{shown}:{port}/console (sign in with an API key)")
    # Workers find the schema migrated and the admin key in place.
    os.environ["IMAGEGATE_AUTO_MIGRATE"] = "false"
    from imagegate.imaging.budget import tune_allocator

    tune_allocator()  # before the workers start: they inherit it through the environment
    # Workers inherit the environment: with several, their metrics meet in one directory.
    with multiprocess_dir(count):
        uvicorn.run(
            "imagegate.app:create_app",
            factory=True,
            host=host,
            port=port,
            workers=count,
            loop="uvloop",
            http="httptools",
            access_log=False,
            log_level=settings.log_level,
            log_config=_log_config(settings.log_level),
            proxy_headers=True,
            timeout_worker_healthcheck=WORKER_PING_SECONDS,
        )


def worker_count(text: str) -> int:
    """``--workers``: a positive number, or ``auto`` for the CPU cores this process may use."""
    if text.strip().lower() == "auto":
        usable = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
        return max(1, len(usable) if usable is not None else os.cpu_count() or 1)
    try:
        count = int(text)
    except ValueError:
        count = 0
    if count < 1:
        raise typer.BadParameter(f"{text!r} is neither a positive number nor 'auto'")
    return count


WORKER_PING_SECONDS = 30
"""How long the supervisor waits for a worker's answer to its liveness ping before killing it
(uvicorn's default, 5 s, killed starting workers on a busy host, with the requests they held)."""


def _log_config(level: str) -> dict[str, Any]:
    """uvicorn's logging plus imagegate's own loggers (JSON lines) in every worker process."""
    config = copy.deepcopy(uvicorn.config.LOGGING_CONFIG)
    config["formatters"]["plain"] = {"format": "%(message)s"}
    config["handlers"]["imagegate"] = {
        "formatter": "plain",
        "class": "logging.StreamHandler",
        "stream": "ext://sys.stderr",
    }
    # httpx logs full URLs (query strings carry signatures) at INFO.
    config["loggers"]["httpx"] = {"level": "WARNING"}
    config["loggers"]["imagegate"] = {
        "handlers": ["imagegate"],
        "level": level.upper(),
        "propagate": False,
    }
    return config


async def _bootstrap(settings: Settings) -> str | None:
    """Migrate; create and return an admin key when none exists and none is configured."""
    async with migrated_engine(settings) as engine, key_service(engine) as keys:
        if settings.admin_key is not None or await keys.count_active():
            return None
        _, secret = await keys.create(name="admin (created by serve)", admin=True)
        return secret
