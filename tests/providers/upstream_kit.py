"""Helpers for adapter tests: fakes on loopback, a context for one call, a task loop, requests."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from imagegate.core.requests import ImageRequest, ImageResult, InputImage
from imagegate.core.upstream import ProviderContext, TaskProvider
from imagegate.providers.downloads import ResultDownloader
from imagegate.providers.fakes import FakeUpstream, serve_in_thread
from imagegate.providers.fakes.images import image_bytes
from imagegate.providers.upstream_client import UpstreamClient


@contextmanager
def running(fake: FakeUpstream) -> Iterator[str]:
    server = serve_in_thread(fake.app)
    try:
        yield server.base_url
    finally:
        server.stop()


def context(
    http: UpstreamClient,
    base_url: str | None,
    model: str,
    *,
    key: str,
    options: Mapping[str, Any] | None = None,
    seconds: float = 20,
    credential: str = "api_key",
) -> ProviderContext:
    deadline = time.monotonic() + seconds
    return ProviderContext(
        http=http,
        request_id="req_test",
        upstream_model=model,
        deadline=deadline,
        credentials={credential: key},
        base_url=base_url,
        options=dict(options or {}),
        fetch=ResultDownloader(http).bind(base_url, deadline),
    )


def request(**changes: Any) -> ImageRequest:
    fields: dict[str, Any] = {
        "operation": "generate",
        "model": "test-model",
        "prompt": "a yellow sun over green hills",
        "n": 1,
        "width": 1024,
        "height": 1024,
        "quality": "auto",
        "output_format": "png",
        "background": "auto",
    }
    fields.update(changes)
    return ImageRequest(**fields)


def input_png(width: int = 64, height: int = 64, colour: int = 0) -> InputImage:
    data = image_bytes(width, height, "png", colour)
    return InputImage(data, "png", width, height, False, "0" * 64)


async def run_task(adapter: TaskProvider, req: ImageRequest, ctx: ProviderContext) -> ImageResult:
    """Submit and poll until done, the way the router does (without its retries)."""
    job = await adapter.submit(req, ctx)
    if isinstance(job, ImageResult):
        return job
    for _ in range(50):
        await asyncio.sleep(0.01)
        status = await adapter.poll(job, ctx)
        if status.result is not None:
            return status.result
    raise AssertionError("the task never finished")
