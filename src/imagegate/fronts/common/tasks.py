"""What the task-style front ends (Flux, Bria, Replicate) share: validate a wire request through
the one generation flow, submit it as an ``image`` task, and link its stored outputs."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from typing import Any

from starlette.requests import Request

from imagegate.core import task_images
from imagegate.core.catalog import CatalogEntry
from imagegate.core.generation import Prepared
from imagegate.core.inputs import InputLoader
from imagegate.core.keys import ApiKey
from imagegate.core.params import GenerationParams
from imagegate.core.task_model import TaskRecord
from imagegate.errors import ImagegateError
from imagegate.fronts.http.deps import public_base_url, request_id_of, services_of
from imagegate.fronts.http.responses import header_value
from imagegate.imaging.fetch import ImageFetcher
from imagegate.outbound import OutboundGuard
from imagegate.services import Services

IGNORED_HEADER = "x-imagegate-ignored-params"
ADJUSTED_HEADER = "x-imagegate-adjusted-params"
TERMINAL_STATUSES = ("succeeded", "failed", "canceled")
MAX_SEED = 4294967295


@asynccontextmanager
async def metered(request: Request, key: ApiKey, *, route: str) -> AsyncIterator[None]:
    """Record a usage row for any refusal raised while reading the wire request."""
    started = time.perf_counter()
    try:
        yield
    except ImagegateError as exc:
        services_of(request).images.record_rejection(
            key, exc, route=route, request_id=request_id_of(request), started=started
        )
        raise


async def prepare(
    request: Request, key: ApiKey, params: GenerationParams, *, route: str
) -> Prepared:
    """Validate ``params`` against the model (inputs loaded) and bind a deployment."""
    service = services_of(request).images
    prepared = await service.prepare(key, params, request_id=request_id_of(request), route=route)
    request.state.log = {"key_id": key.id, "model": prepared.entry.spec.id}
    return prepared


async def prepare_all(
    request: Request, key: ApiKey, all_params: list[GenerationParams], *, route: str
) -> list[Prepared]:
    """:func:`prepare` for several requests; if one is refused (its usage row recorded by
    :func:`prepare`), the others' holds go back."""
    prepared: list[Prepared] = []
    try:
        for params in all_params:
            prepared.append(await prepare(request, key, params, route=route))
    except BaseException:
        for item in prepared:
            await item.hold.give_back()
        raise
    return prepared


async def submit(
    request: Request,
    prepared: Prepared,
    *,
    meta: dict[str, Any],
    task_id: str | None = None,
    webhook_url: str | None = None,
    webhook_secret: str | None = None,
) -> TaskRecord:
    """Queue the validated request as an ``image`` task, which takes over its reservation;
    ``meta`` carries what polls render. If it cannot be queued, the hold is refused."""
    services = services_of(request)
    async with prepared.hold.handed_over() as reservation_id:
        data = await task_images.dump_request(prepared.validated.request, services.assets)
        return await services.tasks.submit(
            kind=task_images.KIND,
            owner_key_id=prepared.key.id,
            request=data,
            meta={"base_url": public_base_url(request), **meta},
            model=prepared.entry.spec.id,
            webhook_url=webhook_url,
            webhook_secret=webhook_secret,
            task_id=task_id,
            reservation_id=reservation_id,
        )


def resolve(request: Request, key: ApiKey, model: str | None) -> CatalogEntry:
    """The catalogue entry the key may use (404 unknown, 403 not allowed)."""
    return services_of(request).images.resolve_model(key, model)


def ignored_headers(*groups: Iterable[str]) -> dict[str, str]:
    """The ``x-imagegate-ignored-params`` header for every parameter the model did not take."""
    names = sorted({name for group in groups for name in group})
    return {IGNORED_HEADER: header_value(",".join(names))} if names else {}


def adjusted_headers(adjusted: Iterable[str]) -> dict[str, str]:
    """The ``x-imagegate-adjusted-params`` header for every value the gateway had to change."""
    notes = list(adjusted)
    return {ADJUSTED_HEADER: ",".join(notes)} if notes else {}


def takes_param(entry: CatalogEntry, name: str) -> bool:
    """Whether the model declares the model-specific parameter ``name``."""
    spec = entry.spec.generate
    return spec is not None and name in spec.extras


def pick_seed(entry: CatalogEntry, given: int | None) -> int | None:
    """The seed a request runs with: the client's, or a fresh one when the model takes seeds
    (so the result can be reproduced); ``None`` when the model takes none."""
    if not takes_param(entry, "seed"):
        return None
    return given if given is not None else secrets.randbelow(2**31)


def asset_url(services: Services, base_url: str, asset_id: str) -> str:
    """An absolute, signed download URL for a stored output."""
    return base_url + services.assets.signed_path(asset_id)


def output_urls(services: Services, task: TaskRecord) -> list[str]:
    """Signed URLs of a task's outputs, under the gateway address the client used."""
    base_url = str(task.meta.get("base_url", ""))
    return [asset_url(services, base_url, asset_id) for asset_id in task.asset_ids]


def input_loader(services: Services) -> InputLoader:
    """A loader for images a front end must inspect itself (wire limits, mask conversion)."""
    guard = OutboundGuard(services.settings.outbound_allow)
    return InputLoader(services.files, ImageFetcher(services.outbound_http, guard))


async def check_webhook_url(request: Request, url: str | None, *, param: str) -> str | None:
    """A webhook target must be an absolute http(s) URL the outbound guard lets through
    (checked here, at submit, and again on every delivery)."""
    return await services_of(request).webhooks.check_target(url, param=param)


async def wait_until_done(
    services: Services, task: TaskRecord, seconds: float, *, interval: float = 0.05
) -> TaskRecord:
    """The task once it is finished, or as it is after ``seconds``."""
    deadline = time.monotonic() + seconds
    while not task.terminal and time.monotonic() < deadline:
        await asyncio.sleep(min(interval, max(0.0, deadline - time.monotonic())))
        task = await services.tasks.get(task.id, task.owner_key_id)
        interval = min(interval * 1.5, 0.5)
    return task
