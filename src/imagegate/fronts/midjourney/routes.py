"""Midjourney task API (``/mj/*``, also under ``/mj-fast``, ``/mj-turbo`` and ``/mj-relax``,
the speed tier): submits answer HTTP 200 with a business code, tasks are polled by id.

The domain work is the app's :class:`~imagegate.core.midjourney.service.MidjourneyService`
(``services.midjourney``); this module reads the wire bodies, picks the tier from the path and
renders tasks and answers."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import orjson
from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel
from starlette.responses import Response

from imagegate.core.keys import ApiKey
from imagegate.core.midjourney import ParameterError
from imagegate.core.midjourney.handler import KIND
from imagegate.core.midjourney.intake import Accepted, Caller
from imagegate.core.midjourney.relaying import RelayRoute
from imagegate.core.midjourney.service import MidjourneyService
from imagegate.core.params import ImageSource
from imagegate.errors import AuthenticationFailed, ImagegateError, NotFound, PermissionDenied
from imagegate.fronts.common.tasks import check_webhook_url
from imagegate.fronts.http.blobs import asset_response
from imagegate.fronts.http.body import parse_json_body
from imagegate.fronts.http.deps import public_base_url, request_id_of, services_of
from imagegate.fronts.http.direct import keyed
from imagegate.fronts.http.responses import json_response
from imagegate.fronts.midjourney.auth import mj_key, optional_mj_key, require_mj_key
from imagegate.fronts.midjourney.render import ImageLinks, described_image, task_object
from imagegate.fronts.midjourney.wire import (
    ActionBody,
    BlendBody,
    DescribeBody,
    EditsBody,
    ImagineBody,
    ListBody,
    ModalBody,
    ShortenBody,
    UploadBody,
    answer,
    business_code,
    refusal,
)
from imagegate.services import Services

router = APIRouter(tags=["Midjourney"])

TIERS = {"mj-fast": "fast", "mj-turbo": "turbo", "mj-relax": "relax"}
PREFIXES = ("", *(f"/{prefix}" for prefix in TIERS))
LIST_LIMIT = 100
"""Tasks ``GET /mj/task/list`` shows (the newest)."""
Body = TypeVar("Body", bound=BaseModel)
Act = Callable[[MidjourneyService, Caller, Any], Awaitable[Accepted]]


def install(services: Services) -> None:
    """Register the renderer of ``notifyHook`` payloads."""
    links = _links(services)
    services.tasks.register_webhook_renderer(
        "mj", lambda task: task_object(task, links, str(task.meta.get("base_url", "")))
    )


def _links(services: Services) -> ImageLinks:
    return ImageLinks(services.assets, services.settings.asset_retention_days * 86400)


def _service(request: Request) -> MidjourneyService:
    return services_of(request).midjourney


def tier_of(request: Request, modes: list[str] | None = None) -> str:
    """The speed tier: the path's prefix; without one, the only mode ``accountFilter`` allows;
    else fast."""
    prefix = request.scope["path"].split("/", 2)[1]
    if prefix in TIERS:
        return TIERS[prefix]
    return modes[0].lower() if modes and len(modes) == 1 else "fast"


async def _submit(
    request: Request,
    key: ApiKey,
    model: type[Body],
    act: Act,
    route: RelayRoute,
) -> Response:
    """Parse the body, run ``act(service, caller, body)`` (or relay it as ``route`` when the
    model is served by a relay) and answer with a business code; request problems answer
    HTTP 200 with code 4/23/24, the rest are HTTP errors. Refusals before validation get
    their usage row here (validation logs its own)."""
    started = time.perf_counter()
    try:
        body = await parse_json_body(request, model)
        caller = await _caller(request, key, body)
    except ImagegateError as exc:
        return _refused(request, key, exc, started, record=True)
    service = _service(request)
    try:
        if service.relay is not None:
            raw = orjson.loads(await request.body())  # parsed above: an object with its fields
            accepted = await service.relay.submit(caller, route, raw)
        else:
            accepted = await act(service, caller, body)
    except ImagegateError as exc:
        return _refused(request, key, exc, started, record=isinstance(exc, ParameterError))
    return json_response(answer(accepted.code, accepted.task.id))


def _refused(
    request: Request, key: ApiKey, error: ImagegateError, started: float, *, record: bool
) -> Response:
    """The business-code answer for ``error``; errors that have none are raised as HTTP."""
    code = business_code(error)
    if code is None:
        raise error
    if record:
        services_of(request).images.record_rejection(
            key, error, route="mj", request_id=request_id_of(request), started=started
        )
    return json_response(refusal(error, code))


async def _caller(request: Request, key: ApiKey, body: BaseModel) -> Caller:
    account = getattr(body, "account_filter", None)
    return Caller(
        key=key,
        request_id=request_id_of(request),
        tier=tier_of(request, account.modes if account else None),
        bot_type=getattr(body, "bot_type", None),
        notify_hook=await check_webhook_url(
            request, getattr(body, "notify_hook", None), param="notifyHook"
        ),
        state=getattr(body, "state", None),
        base_url=public_base_url(request),
    )


def _sources(values: list[str], name: str) -> list[ImageSource]:
    return [ImageSource(f"{name}[{i}]", value) for i, value in enumerate(values)]


# --- submits ---------------------------------------------------------------------------------
async def submit_imagine(request: Request, key: ApiKey = Depends(require_mj_key)) -> Response:
    async def act(service: MidjourneyService, caller: Caller, body: ImagineBody) -> Accepted:
        return await service.submissions.imagine(
            caller, body.prompt, _sources(body.base64_array, "base64Array")
        )

    return await _submit(request, key, ImagineBody, act, "imagine")


async def submit_action(request: Request, key: ApiKey = Depends(require_mj_key)) -> Response:
    async def act(service: MidjourneyService, caller: Caller, body: ActionBody) -> Accepted:
        return await service.presses.action(
            caller, body.task_id, body.custom_id, remix=body.enable_remix
        )

    return await _submit(request, key, ActionBody, act, "action")


async def submit_modal(request: Request, key: ApiKey = Depends(require_mj_key)) -> Response:
    async def act(service: MidjourneyService, caller: Caller, body: ModalBody) -> Accepted:
        return await service.presses.modal(caller, body.task_id, body.prompt, body.mask_base64)

    return await _submit(request, key, ModalBody, act, "modal")


async def submit_blend(request: Request, key: ApiKey = Depends(require_mj_key)) -> Response:
    async def act(service: MidjourneyService, caller: Caller, body: BlendBody) -> Accepted:
        images = _sources(body.base64_array, "base64Array")
        return await service.submissions.blend(caller, images, body.dimensions)

    return await _submit(request, key, BlendBody, act, "blend")


async def submit_describe(request: Request, key: ApiKey = Depends(require_mj_key)) -> Response:
    async def act(service: MidjourneyService, caller: Caller, body: DescribeBody) -> Accepted:
        if body.base64:
            return await service.submissions.describe(caller, ImageSource("base64", body.base64))
        if body.link:
            return await service.submissions.describe(caller, ImageSource("link", body.link))
        raise ParameterError("send the image as base64 or link", param="base64")

    return await _submit(request, key, DescribeBody, act, "describe")


async def submit_shorten(request: Request, key: ApiKey = Depends(require_mj_key)) -> Response:
    async def act(service: MidjourneyService, caller: Caller, body: ShortenBody) -> Accepted:
        return await service.submissions.shorten(caller, body.prompt)

    return await _submit(request, key, ShortenBody, act, "shorten")


async def submit_edits(request: Request, key: ApiKey = Depends(require_mj_key)) -> Response:
    async def act(service: MidjourneyService, caller: Caller, body: EditsBody) -> Accepted:
        image = ImageSource("image", body.image)
        return await service.submissions.edits(caller, image, body.prompt, body.mask_base64)

    return await _submit(request, key, EditsBody, act, "edits")


async def upload_images(request: Request, key: ApiKey = Depends(require_mj_key)) -> Response:
    """``result`` is the list of the stored images' URLs (signed, valid for the retention)."""
    started = time.perf_counter()
    try:
        body = await parse_json_body(request, UploadBody)
        caller = await _caller(request, key, body)
        stored = await _service(request).submissions.upload(
            caller, _sources(body.base64_array, "base64Array")
        )
    except ImagegateError as exc:
        return _refused(request, key, exc, started, record=True)
    assets = services_of(request).assets
    ttl = int(assets.retention_seconds)
    urls = [caller.base_url + assets.signed_path(asset.id, ttl=ttl) for asset in stored]
    return json_response(answer(1, urls))


# --- polling ---------------------------------------------------------------------------------
async def fetch_task(
    task_id: str, request: Request, key: ApiKey = Depends(require_mj_key)
) -> Response:
    task = await _service(request).intake.task(key, task_id)
    links = _links(services_of(request))
    return json_response(task_object(task, links, public_base_url(request)))


async def list_by_condition(request: Request, key: ApiKey = Depends(require_mj_key)) -> Response:
    """The caller's tasks among ``ids``, in the order asked, as a bare array."""
    body = await parse_json_body(request, ListBody)
    services = services_of(request)
    found = await services.tasks.get_many(body.ids, key.id)
    links, base_url = _links(services), public_base_url(request)
    return json_response([task_object(t, links, base_url) for t in found if t.kind == KIND])


async def list_tasks(request: Request, key: ApiKey = Depends(require_mj_key)) -> Response:
    """The caller's newest tasks (at most :data:`LIST_LIMIT`), newest first, as a bare array."""
    services = services_of(request)
    found, _ = await services.tasks.list_owned(
        key.id, KIND, shown=lambda _task: True, limit=LIST_LIMIT
    )
    links, base_url = _links(services), public_base_url(request)
    return json_response([task_object(task, links, base_url) for task in found])


async def image_seed(
    task_id: str, request: Request, key: ApiKey = Depends(require_mj_key)
) -> Response:
    service = _service(request)
    task = await service.intake.task(key, task_id)
    if "relay" in task.request and service.relay is not None:
        relayed = await service.relay.image_seed(key, task)
        return json_response(relayed.model_dump(include={"code", "description", "result"}))
    seed = task.meta.get("seed")
    if seed is None:
        return json_response(answer(4, None, "this task has no seed"))
    return json_response({"code": 1, "description": "success", "result": str(seed)})


async def task_image(
    task_id: str,
    request: Request,
    exp: str | None = Query(None, description="expiry, Unix seconds"),
    sig: str | None = Query(None, description="hex HMAC-SHA256 from the task's imageUrl"),
    key: ApiKey | None = Depends(optional_mj_key),
) -> Response:
    """The task's image: with the signature from its ``imageUrl``, or with the owner's key."""
    services = services_of(request)
    owner: str | None = None
    if not _links(services).valid(task_id, exp, sig):
        if key is not None:
            owner = key.id
        elif sig is not None:
            raise PermissionDenied("invalid link signature", code="invalid_signature")
        else:
            raise AuthenticationFailed("send the link's signature or the owner's API key")
    task = await services.tasks.get(task_id, owner)
    described = described_image(task) if task.kind == KIND else None
    if described is not None:  # a DESCRIBE task's image is the one it described
        digest, mime_type = described
        data = await services.assets.blob(digest)
        headers = {"cache-control": "private, max-age=3600", "etag": f'"{digest}"'}
        return Response(data, media_type=mime_type, headers=headers)
    if task.kind != KIND or not task.asset_ids:
        raise NotFound(f"task {task_id!r} has no image", code="image_not_found")
    expires_at = float(exp) if owner is None and exp and exp.isdigit() else None
    return await asset_response(services.assets, task.asset_ids[0], expires_at)


_ROUTES: tuple[tuple[str, str, Callable[..., Any], type[BaseModel] | None, str], ...] = (
    ("POST", "/mj/submit/imagine", submit_imagine, ImagineBody, "Imagine: a grid of four"),
    ("POST", "/mj/submit/action", submit_action, ActionBody, "Press a finished task's button"),
    ("POST", "/mj/submit/modal", submit_modal, ModalBody, "Give a MODAL task its mask/prompt"),
    ("POST", "/mj/submit/blend", submit_blend, BlendBody, "Blend 2–5 images"),
    ("POST", "/mj/submit/describe", submit_describe, DescribeBody, "Four prompts for an image"),
    ("POST", "/mj/submit/shorten", submit_shorten, ShortenBody, "Four shorter prompts"),
    ("POST", "/mj/submit/edits", submit_edits, EditsBody, "Edit an image (optionally masked)"),
    ("POST", "/mj/submit/upload-discord-images", upload_images, UploadBody, "Store images"),
    ("GET", "/mj/task/{task_id}/fetch", fetch_task, None, "A task"),
    ("POST", "/mj/task/list-by-condition", list_by_condition, ListBody, "Tasks by id"),
    ("GET", "/mj/task/list", list_tasks, None, "The newest tasks of this key"),
    ("GET", "/mj/task/{task_id}/image-seed", image_seed, None, "The seed of a task"),
    ("GET", "/mj/image/{task_id}", task_image, None, "A task's image"),
)


_SUBMIT_ANSWER: dict[str, Any] = {
    "type": "object",
    "required": ["code", "description", "result", "properties"],
    "properties": {
        "code": {"type": "integer", "description": "1 submitted, 21 exists, 22 queued, 2x refused"},
        "description": {"type": "string"},
        "result": {"description": "the task id (a list of URLs for upload-discord-images)"},
        "properties": {"type": "object"},
    },
}
"""What every submit answers with HTTP 200, accepted or refused (Midjourney's business shape)."""


def _body_schema(model: type[BaseModel] | None, path: str) -> dict[str, Any] | None:
    if model is None:
        return None
    schema = model.model_json_schema(by_alias=True)
    extra: dict[str, Any] = {
        "requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}
    }
    if path.startswith("/mj/submit/"):
        content = {"application/json": {"schema": _SUBMIT_ANSWER}}
        extra["responses"] = {"200": {"description": "Submitted or refused", "content": content}}
    return extra


for _prefix in PREFIXES:
    for _method, _path, _endpoint, _model, _summary in _ROUTES:
        router.add_api_route(
            _prefix + _path,
            _endpoint,
            methods=[_method],
            summary=_summary + (f" ({TIERS[_prefix[1:]]} tier)" if _prefix else ""),
            name=f"{_endpoint.__name__}{_prefix.replace('/', '_').replace('-', '_')}",
            openapi_extra=_body_schema(_model, _path),
        )

DIRECT_ROUTES = {
    (method, prefix + path): keyed(endpoint, mj_key)
    for prefix in PREFIXES
    for method, path, endpoint, _model, _summary in _ROUTES
    if "{" not in path
}
"""Every route without a path parameter (the submits and ``list-by-condition``)."""
