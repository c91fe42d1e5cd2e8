"""Output for people: ISO dates, "never"/"unlimited" for unset fields, tables that keep ids whole.

Shared by the server commands (``keys``, ``usage``) and the client commands (``generate``, …).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

__all__ = ["field_table", "iso", "print_json", "print_table", "shown"]

ALL_FIELDS = frozenset({"models", "routes"})
DEFAULT_FIELDS = frozenset({"rpm"})
"""Limits that fall back to a server-wide default when unset."""


def iso(timestamp: float | None) -> str:
    """``2026-12-04T15:38:07Z`` (UTC), or ``never`` for no timestamp."""
    if not timestamp:
        return "never"
    when = datetime.fromtimestamp(timestamp, UTC).replace(microsecond=0)
    return when.isoformat().replace("+00:00", "Z")


def shown(name: str, value: object) -> str:
    """One field of a key, a limit or a task, as a person reads it."""
    if name.endswith("_at") and (value is None or isinstance(value, int | float)):
        return iso(value)
    if value is None:
        if name in ALL_FIELDS:
            return "all"
        if name in DEFAULT_FIELDS:
            return "server default"
        return "unlimited"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list | tuple):
        return ",".join(str(item) for item in value) or "none"
    return str(value)


def print_table(table: Table) -> None:
    """Print ``table`` at its natural width even past the terminal's, so no cell is cut (ids
    must stay copyable, also when piped, where rich would assume 80 columns)."""
    console = Console()
    needed = console.measure(table, options=console.options.update_width(10_000)).minimum
    if needed > console.width:
        console = Console(width=needed)
    console.print(table)


def print_json(value: Any) -> None:
    typer.echo(json.dumps(value, indent=2, ensure_ascii=False, default=str))


def field_table(fields: Mapping[str, object], title: str) -> Table:
    table = Table("field", "value", title=title)
    for name, value in fields.items():
        table.add_row(name, shown(name, value))
    return table
