"""``imagegate models``: a server's catalogue (``GET /api/models``) as a table with prices."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.table import Table

from imagegate.cli._client import BaseUrl, Client, Key
from imagegate.cli._output import print_json, print_table

DEFAULT_URL = "http://127.0.0.1:8000"


def models(
    all_models: Annotated[
        bool, typer.Option("--all", help="Also models whose provider has no credentials here")
    ] = False,
    feature: Annotated[
        str | None, typer.Option(help="Only models with this feature, e.g. image-edit")
    ] = None,
    json: Annotated[bool, typer.Option("--json", help="Print the records as JSON")] = False,
    base_url: BaseUrl = DEFAULT_URL,
    key: Key = None,
) -> None:
    """The models a server offers, with their prices (no key needed)."""
    params: dict[str, str] = {"page": "0"}
    if all_models:
        params["all"] = "true"
    if feature:
        params["feature"] = feature
    with Client(base_url, key, need_key=False) as client:
        records: list[dict[str, Any]] = client.json("GET", "/api/models", params=params)["data"]
    if json:
        print_json(records)
        return
    table = Table(title="models" + (" (all)" if all_models else " (available here)"))
    table.add_column("id", no_wrap=True)
    for column in ("provider", "price", "features", "available"):
        table.add_column(column, overflow="fold")
    for record in records:
        table.add_row(
            record["id"],
            str(record.get("provider", "")),
            price(record.get("pricing") or {}),
            ", ".join(record.get("features") or ()),
            "yes" if record.get("available") else "no (no credentials)",
        )
    print_table(table)


def price(pricing: dict[str, Any]) -> str:
    """``$0.04 / image``, ``$5 in, $40 out / M tokens``, or ``free``."""
    amounts = [pricing.get(name) for name in ("input", "output", "per_request", "per_second")]
    if not any(amounts):
        return "free"
    unit = str(pricing.get("currency", "USD")).removeprefix("USD / ")
    if pricing.get("input") is not None and pricing.get("output") is not None:
        return f"${pricing['input']:g} in, ${pricing['output']:g} out / {unit}"
    parts = [f"${value:g}" for value in amounts if value]
    return f"{', '.join(parts)} / {unit}"
