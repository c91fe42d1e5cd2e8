"""Each deployment's health as the router sees it (breaker state, cooldown, last error,
latency), and an on-demand check of one deployment's cheapest authenticated endpoint."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

from imagegate.core.catalog import Catalog
from imagegate.core.routing import Router
from imagegate.core.routing_state import Deployment
from imagegate.core.upstream import Checkable, UpstreamHttp
from imagegate.errors import ImagegateError


@dataclass(frozen=True, slots=True)
class DeploymentHealth:
    key: str
    model: str
    provider: str
    upstream_model: str
    host: str
    state: str
    """``closed`` (healthy), ``open`` (cooling down) or ``half-open`` (probing)."""
    cooldown_seconds: float
    failures: int
    last_error: str | None
    last_error_at: float | None
    latency_ms: float | None
    checkable: bool


@dataclass(frozen=True, slots=True)
class CheckOutcome:
    ok: bool | None
    said: str
    ms: float


def _host(dep: Deployment) -> str:
    return (urlsplit(dep.base_url).hostname or "") if dep.base_url else "(provider default)"


def health(router: Router, catalog: Catalog) -> list[DeploymentHealth]:
    """Every configured deployment of every available model, in catalogue order."""
    now = time.monotonic()
    found = []
    for entry in catalog:
        if not entry.available_deployments:
            continue
        for dep in router.deployments(entry):
            found.append(
                DeploymentHealth(
                    key=dep.key,
                    model=entry.spec.id,
                    provider=dep.name,
                    upstream_model=dep.spec.model,
                    host=_host(dep),
                    state=dep.breaker.state(now),
                    cooldown_seconds=round(max(0.0, dep.breaker.open_until - now), 1),
                    failures=dep.breaker.failures,
                    last_error=dep.last_error,
                    last_error_at=dep.last_error_at,
                    latency_ms=dep.latency_ms,
                    checkable=isinstance(dep.adapter, Checkable),
                )
            )
    return found


def find(router: Router, catalog: Catalog, key: str) -> Deployment | None:
    for entry in catalog:
        if entry.available_deployments:
            for dep in router.deployments(entry):
                if dep.key == key:
                    return dep
    return None


async def check(dep: Deployment, http: UpstreamHttp | None, seconds: float = 15.0) -> CheckOutcome:
    """Call the deployment's cheapest authenticated endpoint (never a generation)."""
    adapter = dep.adapter
    if not isinstance(adapter, Checkable):
        return CheckOutcome(None, "nothing to check (built in)", 0.0)
    ctx = dep.context(http, "console-check", time.monotonic() + seconds)
    started = time.perf_counter()
    try:
        async with asyncio.timeout(seconds):
            said = await adapter.check(ctx)
        ok = True
    except ImagegateError as exc:
        said, ok = f"{exc.status} {exc.message}", False
    except TimeoutError:
        said, ok = f"no answer within {seconds:g} s", False
    return CheckOutcome(ok, said, (time.perf_counter() - started) * 1000)
