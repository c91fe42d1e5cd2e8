"""``imagegate keys``: create, list, show, update, top up and revoke API keys."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from imagegate.cli._common import DataDir, key_service, migrated_engine, settings_for
from imagegate.cli._output import field_table, iso, print_json, print_table
from imagegate.core.billing import Billing, KeyLimits
from imagegate.core.keys import ApiKey, parse_globs
from imagegate.storage.repositories.billing import sql_billing

app = typer.Typer(help="API keys.", no_args_is_help=True)


Money = Annotated[float | None, typer.Option(min=0, help="USD")]
Count = Annotated[int | None, typer.Option(min=1)]
Routes = Annotated[str | None, typer.Option(help="Comma-separated path globs, e.g. '/v1/images/*'")]
Json = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table")]


def _limits(
    budget_daily: float | None,
    budget_monthly: float | None,
    routes: str | None,
    rpm: int | None,
    images_per_minute: int | None,
    megapixels_per_day: float | None,
    max_concurrent: int | None,
    expires_in_days: float | None,
) -> dict[str, Any]:
    values: dict[str, Any] = {
        "budget_daily_usd": Decimal(str(budget_daily)) if budget_daily is not None else None,
        "budget_monthly_usd": Decimal(str(budget_monthly)) if budget_monthly is not None else None,
        "routes": list(parse_globs(routes) or ()) if routes is not None else None,
        "rpm": rpm,
        "images_per_minute": images_per_minute,
        "megapixels_per_day": megapixels_per_day,
        "max_concurrent": max_concurrent,
        "expires_at": time.time() + expires_in_days * 86400 if expires_in_days else None,
    }
    return {name: value for name, value in values.items() if value is not None}


@app.command("create")
def create(
    name: Annotated[str, typer.Option(help="A label for the key")] = "",
    models: Annotated[
        str | None, typer.Option(help="Comma-separated model globs, e.g. 'gpt-image-*,sketch'")
    ] = None,
    admin: Annotated[bool, typer.Option("--admin", help="May manage keys")] = False,
    credit: Money = None,
    budget_daily: Money = None,
    budget_monthly: Money = None,
    routes: Routes = None,
    rpm: Count = None,
    images_per_minute: Count = None,
    megapixels_per_day: Annotated[float | None, typer.Option(min=0)] = None,
    max_concurrent: Count = None,
    expires_in_days: Annotated[float | None, typer.Option(min=0)] = None,
    json: Json = False,
    data_dir: DataDir = None,
) -> None:
    """Create a key and print its secret (shown once, stored only as a hash). Without --credit
    the key has unlimited credit."""
    limits = _limits(
        budget_daily,
        budget_monthly,
        routes,
        rpm,
        images_per_minute,
        megapixels_per_day,
        max_concurrent,
        expires_in_days,
    )
    if credit is not None:
        limits["balance_usd"] = Decimal(str(credit))

    async def run() -> tuple[ApiKey, str]:
        async with migrated_engine(settings_for(data_dir)) as engine, key_service(engine) as keys:
            return await keys.create(
                name=name, models=parse_globs(models), admin=admin, limits=limits
            )

    key, secret = asyncio.run(run())
    if json:
        print_json({**key.public(), "key": secret})
        return
    typer.echo(f"created {key.id} ({'admin' if admin else 'client'} key); it is shown only once:")
    typer.echo(secret)


@app.command("list")
def list_keys(json: Json = False, data_dir: DataDir = None) -> None:
    """List keys by id and prefix (never their secrets); ids are printed whole."""

    async def run() -> list[ApiKey]:
        async with migrated_engine(settings_for(data_dir)) as engine, key_service(engine) as keys:
            return await keys.list()

    keys = asyncio.run(run())
    if json:
        print_json([key.public() for key in keys])
        return
    table = Table()
    table.add_column("id", no_wrap=True)
    for column in ("name", "prefix", "models", "admin", "created", "revoked"):
        table.add_column(column)
    for key in keys:
        table.add_row(
            key.id,
            key.name,
            key.prefix + "…",
            ",".join(key.models) if key.models else "*",
            "yes" if key.is_admin else "",
            iso(key.created_at),
            iso(key.revoked_at),
        )
    print_table(table)


@app.command("revoke")
def revoke(key_id: str, data_dir: DataDir = None) -> None:
    """Revoke a key by id; it stops working at once (within seconds on other replicas)."""

    async def run() -> ApiKey | None:
        async with migrated_engine(settings_for(data_dir)) as engine, key_service(engine) as keys:
            return await keys.revoke(key_id)

    if asyncio.run(run()) is None:
        typer.echo(f"no key with id {key_id}", err=True)
        raise typer.Exit(1)
    typer.echo(f"revoked {key_id}")


@app.command("update")
def update(
    key_id: str,
    budget_daily: Money = None,
    budget_monthly: Money = None,
    routes: Routes = None,
    rpm: Count = None,
    images_per_minute: Count = None,
    megapixels_per_day: Annotated[float | None, typer.Option(min=0)] = None,
    max_concurrent: Count = None,
    expires_in_days: Annotated[float | None, typer.Option(min=0)] = None,
    json: Json = False,
    data_dir: DataDir = None,
) -> None:
    """Change a key's limits (only the options given). Running servers see it within seconds."""
    changes = _limits(
        budget_daily,
        budget_monthly,
        routes,
        rpm,
        images_per_minute,
        megapixels_per_day,
        max_concurrent,
        expires_in_days,
    )
    _show(
        asyncio.run(_with_billing(data_dir, key_id, lambda b: b.update_limits(key_id, changes))),
        json,
    )


@app.command("topup")
def top_up(
    key_id: str,
    amount: Annotated[float, typer.Argument(min=0.000001, help="USD to add")],
    note: Annotated[str | None, typer.Option(help="Why, for the ledger")] = None,
    json: Json = False,
    data_dir: DataDir = None,
) -> None:
    """Add credit to a key."""
    value = Decimal(str(amount))
    _show(
        asyncio.run(_with_billing(data_dir, key_id, lambda b: b.top_up(key_id, value, note))),
        json,
    )


@app.command("show")
def show(key_id: str, json: Json = False, data_dir: DataDir = None) -> None:
    """A key's limits, balance, spending and latest top-ups (with their notes)."""
    _show(asyncio.run(_with_billing(data_dir, key_id, lambda b: b.limits(key_id))), json)


async def _with_billing(
    data_dir: Path | None, key_id: str, action: Callable[[Billing], Awaitable[KeyLimits]]
) -> tuple[ApiKey, KeyLimits, list[dict[str, Any]]]:
    async with migrated_engine(settings_for(data_dir)) as engine, key_service(engine) as keys:
        key = await keys.get(key_id)
        if key is None:
            typer.echo(f"no key with id {key_id}", err=True)
            raise typer.Exit(1)
        billing = sql_billing(engine)
        limits = await action(billing)
        return key, limits, await billing.top_ups(key_id)


def _show(found: tuple[ApiKey, KeyLimits, list[dict[str, Any]]], json: bool) -> None:
    key, limits, top_ups = found
    fields = {**key.public(), **limits.public()}
    if json:
        print_json({**fields, "top_ups": top_ups})
        return
    print_table(field_table(fields, f"{key.id} ({key.name or 'unnamed'})"))
    if top_ups:
        table = Table("when", "amount USD", "note", title="latest top-ups")
        for entry in top_ups:
            table.add_row(iso(entry["created_at"]), f"{entry['amount_usd']:g}", entry["note"] or "")
        print_table(table)
