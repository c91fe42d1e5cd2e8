"""``imagegate providers``: see which upstreams are configured and whether they answer.

``imagegate providers check`` calls, for every deployment that has credentials, its provider's
cheapest authenticated endpoint (a model lookup, an account or credit balance; never a
generation) and prints one line per deployment: the model, the provider, the host (never the
key), the outcome and how long it took. It exits 1 when any configured deployment fails.
Deployments without credentials are listed with the environment variables that would enable
them (``--all``).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Annotated

import httpx
import typer
from rich.console import Console
from rich.table import Table

from imagegate.core.catalog import Catalog, CatalogEntry, load_catalog
from imagegate.core.routing import Router
from imagegate.core.routing_state import Deployment
from imagegate.core.upstream import Checkable
from imagegate.errors import ImagegateError
from imagegate.providers.downloads import ResultDownloader
from imagegate.providers.registry import ProviderRegistry
from imagegate.providers.upstream_client import UpstreamClient
from imagegate.settings import Settings

app = typer.Typer(help="Upstream providers.", no_args_is_help=True)


@dataclass(frozen=True, slots=True)
class Outcome:
    model: str
    provider: str
    upstream: str
    host: str
    ok: bool | None
    """``None``: not configured (no credentials) or nothing to check."""
    said: str
    ms: float = 0.0


@app.command("check")
def check(
    model: Annotated[
        list[str] | None, typer.Option("--model", "-m", help="Only these models (repeatable)")
    ] = None,
    show_all: Annotated[
        bool, typer.Option("--all", help="Also list deployments that have no credentials")
    ] = False,
    timeout: Annotated[float, typer.Option(help="Seconds per check")] = 15.0,
) -> None:
    """Call each configured provider's cheapest endpoint and report."""
    settings = Settings()
    registry = ProviderRegistry()
    catalog = load_catalog(registry, settings.config)
    outcomes = asyncio.run(_check_all(catalog, registry, set(model or ()), timeout))
    if show_all:
        outcomes += _unconfigured(catalog, set(model or ()))
    table = Table("model", "provider", "upstream model", "host", "result", "ms")
    for o in outcomes:
        mark = "[green]ok[/green]" if o.ok else "[red]failed[/red]" if o.ok is False else "-"
        table.add_row(o.model, o.provider, o.upstream, o.host, f"{mark} {o.said}", f"{o.ms:.0f}")
    Console(width=160).print(table)
    if not outcomes:
        typer.echo("no provider is configured; set a provider's API key (see README)", err=True)
    if any(o.ok is False for o in outcomes):
        raise typer.Exit(1)


async def _check_all(
    catalog: Catalog, registry: ProviderRegistry, only: set[str], seconds: float
) -> list[Outcome]:
    async with UpstreamClient() as http:
        router = Router(registry, http, downloader=ResultDownloader(http))
        pending = []
        for entry in catalog:
            if (only and entry.spec.id not in only) or not entry.available_deployments:
                continue
            for dep in router.deployments(entry):
                pending.append(_check_one(entry, dep, http, seconds))
        return list(await asyncio.gather(*pending))


async def _check_one(
    entry: CatalogEntry, dep: Deployment, http: UpstreamClient, seconds: float
) -> Outcome:
    host = httpx.URL(dep.base_url).host if dep.base_url else "(provider default)"
    adapter = dep.adapter
    base = (entry.spec.id, dep.name, dep.spec.model, host)
    if not isinstance(adapter, Checkable):
        return Outcome(*base, ok=None, said="nothing to check (built in)")
    ctx = dep.context(http, "providers-check", time.monotonic() + seconds)
    started = time.perf_counter()
    try:
        async with asyncio.timeout(seconds):
            said = await adapter.check(ctx)
        ok = True
    except ImagegateError as exc:
        said, ok = f"{exc.status} {exc.message}", False
    except TimeoutError:
        said, ok = f"no answer within {seconds:g} s", False
    return Outcome(*base, ok=ok, said=said, ms=(time.perf_counter() - started) * 1000)


def _unconfigured(catalog: Catalog, only: set[str]) -> list[Outcome]:
    found = []
    for entry in catalog:
        if only and entry.spec.id not in only:
            continue
        for spec in entry.spec.deployments:
            if spec in entry.available_deployments:
                continue
            names = sorted({name for names in spec.credentials.values() for name in names})
            said = f"not configured: set {' or '.join(names)}" if names else "not configured"
            host = httpx.URL(spec.base_url).host if spec.base_url else "(provider default)"
            found.append(Outcome(entry.spec.id, spec.provider, spec.model, host, None, said))
    return found
