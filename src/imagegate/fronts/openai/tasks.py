"""Async OpenAI image tasks (an imagegate extension): a generation, edit or variation sent with
``Prefer: respond-async`` (or ``"async": true``) is answered 202 with an ``image.task`` and
runs on the durable task engine (same hold and settle, restart-safe). It is polled at
``GET /v1/images/tasks/{id}``, watched at ``…/events`` (SSE), cancelled at ``…/cancel`` and,
with ``webhook_url``, reported by a signed webhook. Its ``result`` is the ImagesResponse the
synchronous call would have returned."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import orjson
import pybase64
from fastapi import APIRouter, Depends, Request
from starlette.responses import Response, StreamingResponse

from imagegate.core.keys import ApiKey
from imagegate.core.params import GenerationParams
from imagegate.core.requests import PartialImage, Usage
from imagegate.core.task_model import TaskRecord
from imagegate.errors import InvalidRequest, NotFound
from imagegate.fronts.common import tasks as front
from imagegate.fronts.http.auth import require_key
from imagegate.fronts.http.deps import services_of
from imagegate.fronts.http.responses import json_response
from imagegate.fronts.openai.render import image_item, images_response
from imagegate.services import Services

router = APIRouter(tags=["OpenAI Images (async tasks)"])

FRONT = "openai"
TASKS = "/v1/images/tasks"
ID_PREFIX = "imgtask_"
MAX_WEBHOOK_URL = 2048
MAX_WEBHOOK_SECRET = 256
KEEPALIVE_SECONDS = 15.0
"""An SSE comment this often while nothing changes, so proxies that cut idle connections
(Cloudflare's 100 s) keep the stream open."""
MAX_POLL_SECONDS = 1.0

_STATUSES = {
    "queued": "queued",
    "parked": "queued",
    "running": "in_progress",
    "succeeded": "succeeded",
    "failed": "failed",
    "canceled": "canceled",
}
_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    429: "rate_limit_error",
    500: "server_error",
}
"""An error's type from its status (a task keeps the status and code of its error)."""


def install(services: Services) -> None:
    """Webhooks of async image tasks carry the task object, its result's images as signed
    links (the payload is rendered inside the completing transaction: no store reads there)."""
    services.tasks.register_webhook_renderer(FRONT, lambda task: _object(services, task, None))


@dataclass(frozen=True, slots=True)
class AsyncOptions:
    """What a client asked of its task beyond the image request itself."""

    webhook_url: str | None
    webhook_secret: str | None


async def async_options(request: Request, params: GenerationParams) -> AsyncOptions | None:
    """The task options when the client asked for a task (``Prefer: respond-async`` or
    ``"async": true``), else ``None``; the task-only fields leave ``params.extras`` either way
    (a synchronous call reports ``webhook_url`` as ignored)."""
    flag = params.extras.pop("async", None)
    if flag is not None and not isinstance(flag, bool):
        raise InvalidRequest("async must be true or false", param="async")
    if not (flag or _prefers_async(request.headers.get("prefer", ""))):
        return None
    url = _text(params.extras.pop("webhook_url", None), "webhook_url", MAX_WEBHOOK_URL)
    secret = _text(params.extras.pop("webhook_secret", None), "webhook_secret", MAX_WEBHOOK_SECRET)
    await front.check_webhook_url(request, url, param="webhook_url")
    params.stream = False  # a task is watched at its events URL, not answered as a stream
    return AsyncOptions(url, secret if url else None)


def _prefers_async(prefer: str) -> bool:
    preferences = (
        part.split("=", 1)[0].strip().lower() for part in prefer.replace(";", ",").split(",")
    )
    return "respond-async" in preferences


def _text(value: Any, param: str, limit: int) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value or len(value) > limit:
        raise InvalidRequest(f"{param} must be a string of 1 to {limit} characters", param=param)
    return value


async def submit(
    request: Request, key: ApiKey, params: GenerationParams, options: AsyncOptions, *, route: str
) -> Response:
    """Hold the price and queue the request; 202 with the task."""
    prepared = await front.prepare(request, key, params, route=route)
    task = await front.submit(
        request,
        prepared,
        meta={
            "front": FRONT,
            "response_format": prepared.validated.response_format,
            "webhook_statuses": list(front.TERMINAL_STATUSES),
        },
        task_id=ID_PREFIX + secrets.token_hex(12),
        webhook_url=options.webhook_url,
        webhook_secret=options.webhook_secret,
    )
    headers = front.ignored_headers(prepared.validated.ignored)
    return json_response(await task_object(services_of(request), task), 202, headers)


@router.get(TASKS + "/{task_id}", summary="An async image task (result once succeeded)")
async def get_task(task_id: str, request: Request, key: ApiKey = Depends(require_key)) -> Response:
    services = services_of(request)
    task = await _owned(services, task_id, key)
    return json_response(await task_object(services, task))


@router.post(TASKS + "/{task_id}/cancel", summary="Cancel an async image task")
async def cancel_task(
    task_id: str, request: Request, key: ApiKey = Depends(require_key)
) -> Response:
    services = services_of(request)
    await _owned(services, task_id, key)
    task = await services.tasks.cancel(task_id, key.id)
    return json_response(await task_object(services, task))


@router.get(
    TASKS + "/{task_id}/events",
    summary="Server-sent events: progress, partial images, then completed or failed",
)
async def task_events(
    task_id: str, request: Request, key: ApiKey = Depends(require_key)
) -> Response:
    services = services_of(request)
    task = await _owned(services, task_id, key)
    return StreamingResponse(_events(services, task), media_type="text/event-stream")


async def _owned(services: Services, task_id: str, key: ApiKey) -> TaskRecord:
    """The key's async image task; any other id (another key's, another front's) is a 404."""
    task = await services.tasks.get(task_id, key.id)
    if task.meta.get("front") != FRONT:
        raise NotFound(f"no such task: {task_id!r}", param="id", code="task_not_found")
    return task


async def _events(services: Services, task: TaskRecord) -> AsyncIterator[bytes]:
    """Progress whenever the status or percentage changes, previews as the worker publishes
    them (in this process), then the final event; the task is re-read with a growing pause."""
    with services.partials.watch(task.id) as previews:
        reported: tuple[str, int] | None = None
        quiet_since = time.monotonic()
        pause = 0.05
        while True:
            if task.terminal:
                # Previews that arrived since the last wait come before the final event.
                while not previews.empty():
                    yield _event("image.task.partial_image", _preview(task, previews.get_nowait()))
                name = "completed" if task.status == "succeeded" else "failed"
                body = await task_object(services, task)
                yield _event(f"image.task.{name}", body)
                return
            if (task.status, task.progress) != reported:
                reported = (task.status, task.progress)
                quiet_since = time.monotonic()
                yield _event("image.task.progress", _object(services, task, None))
            try:
                preview = await asyncio.wait_for(previews.get(), pause)
            except TimeoutError:
                pause = min(pause * 1.5, MAX_POLL_SECONDS)
            else:
                quiet_since = time.monotonic()
                yield _event("image.task.partial_image", _preview(task, preview))
            if time.monotonic() - quiet_since > KEEPALIVE_SECONDS:
                quiet_since = time.monotonic()
                yield b": keep-alive\n\n"
            task = await services.tasks.get(task.id, task.owner_key_id)


def _preview(task: TaskRecord, preview: PartialImage) -> dict[str, Any]:
    return {
        "id": task.id,
        "object": "image.task.partial_image",
        "b64_json": preview.image.base64(),
        "image_index": preview.image_index,
        "partial_image_index": preview.partial_index,
        "output_format": preview.image.output_format,
    }


def _event(name: str, body: dict[str, Any]) -> bytes:
    return b"event: " + name.encode() + b"\ndata: " + orjson.dumps(body) + b"\n\n"


async def task_object(services: Services, task: TaskRecord) -> dict[str, Any]:
    """The ``image.task`` object; a succeeded task's images are read from the store for a
    ``b64_json`` result."""
    images = None
    if task.status == "succeeded" and task.meta.get("response_format") != "url":
        digests = (task.result or {})["blobs"]
        images = list(await asyncio.gather(*(services.assets.blob(d) for d in digests)))
    return _object(services, task, images)


def _object(services: Services, task: TaskRecord, images: list[bytes] | None) -> dict[str, Any]:
    """The ``image.task`` object; a succeeded task's result carries ``images`` as ``b64_json``,
    or signed links without them."""
    base = str(task.meta.get("base_url", "")) + TASKS + "/" + task.id
    body: dict[str, Any] = {
        "id": task.id,
        "object": "image.task",
        "status": _STATUSES[task.status],
        "created_at": int(task.created_at),
        "model": task.model,
        "progress": task.progress,
        "urls": {"get": base, "events": base + "/events", "cancel": base + "/cancel"},
    }
    if task.status == "succeeded":
        body["result"] = _result(services, task, images)
    elif task.status == "failed":
        error = task.error or {}
        status = int(error.get("status") or 500)
        body["error"] = {
            "message": str(error.get("message", "the task failed")),
            "type": _ERROR_TYPES.get(status, "upstream_error"),
            "code": error.get("code"),
        }
    return body


def _result(services: Services, task: TaskRecord, images: list[bytes] | None) -> dict[str, Any]:
    """The ImagesResponse the synchronous call would have returned for this task (``images``:
    its bytes for ``b64_json``; ``None``: signed links)."""
    stored = task.result or {}
    request = task.request
    as_url = images is None
    base_url = str(task.meta.get("base_url", ""))
    revised: list[str | None] = list(stored.get("revised_prompts") or [])
    data = []
    for index, asset_id in enumerate(task.asset_ids):
        value = (
            pybase64.b64encode(images[index]).decode("ascii")
            if images is not None
            else front.asset_url(services, base_url, asset_id)
        )
        data.append(image_item(value, as_url, revised[index] if index < len(revised) else None))
    usage = stored.get("usage")
    return images_response(
        data,
        services.catalog.resolve(task.model) if task.model else None,
        output_format=request["output_format"],
        size=f"{request['width']}x{request['height']}",
        quality=stored.get("quality") or request["quality"],
        background=stored.get("background") or "opaque",
        usage=Usage(**usage) if usage else None,
        created=int(task.finished_at or task.updated_at),
    )
