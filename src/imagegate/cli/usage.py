"""``imagegate usage``: the usage log as a table, the same figures as ``GET /api/usage``."""

from __future__ import annotations

import asyncio
import time
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from imagegate.cli._common import DataDir, migrated_engine, settings_for
from imagegate.core.usage_report import UsageFilter, UsageReport, to_csv
from imagegate.storage.repositories.usage_report import SqlUsageRepository

GROUPS = ("day", "model", "key")


def usage(
    days: Annotated[float, typer.Option(help="How far back to look")] = 30,
    model: Annotated[str | None, typer.Option(help="Only this model")] = None,
    key: Annotated[str | None, typer.Option("--key", help="Only this key id")] = None,
    route: Annotated[str | None, typer.Option(help="Only this route")] = None,
    by: Annotated[str, typer.Option(help="Totals by day, model or key")] = "day",
    csv: Annotated[bool, typer.Option("--csv", help="Print every row as CSV instead")] = False,
    data_dir: DataDir = None,
) -> None:
    """Requests, images, tokens and cost, with totals."""
    if by not in GROUPS:
        raise typer.BadParameter(f"--by must be one of {', '.join(GROUPS)}")
    where = UsageFilter(start=time.time() - days * 86400, model=model, key_id=key, route=route)

    async def run() -> tuple[list[dict[str, Any]], dict[str, Any]]:
        async with migrated_engine(settings_for(data_dir)) as engine:
            report = UsageReport(SqlUsageRepository(engine))
            return await report.rows(where, 100_000), await report.totals(where)

    rows, totals = asyncio.run(run())
    if csv:
        typer.echo(to_csv(rows), nl=False)
        return
    table = Table(by, "requests", "errors", "images", "input tokens", "output tokens", "cost USD")
    for group in [*totals[f"by_{by}"], {by: "total", **totals["totals"]}]:
        table.add_row(
            str(group.get(by) or group.get("key_id") or "—"),
            str(group["requests"]),
            str(group["errors"]),
            str(group["images"]),
            str(group["input_tokens"]),
            str(group["output_tokens"]),
            f"{group['cost_usd']:.6f}",
        )
    Console().print(table)
