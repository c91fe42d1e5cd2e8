"""Bria wire format: synchronous text-to-image and text-to-vector, asynchronous image editing
actions polled at ``GET /bria/{request_id}``.

Every route takes an optional ``model`` (an imagegate extension; default: the ``bria_model``
setting); an action the model has no feature for is a 400 naming ``model``."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from imagegate.core.catalog import CatalogEntry
from imagegate.core.keys import ApiKey
from imagegate.core.params import GenerationParams, input_spec
from imagegate.core.task_model import TaskRecord
from imagegate.errors import InvalidRequest, NotFound
from imagegate.fronts.bria.edit import check_fields, edit_params, plan_edit
from imagegate.fronts.bria.wire import ACTIONS, EditBody, TextToImageBody, TextToVectorBody
from imagegate.fronts.common import tasks as front
from imagegate.fronts.common.sizes import parse_ratio, size_for_ratio
from imagegate.fronts.http.auth import BRIA_KEY
from imagegate.fronts.http.body import parse_json_body
from imagegate.fronts.http.deps import public_base_url, request_id_of, services_of
from imagegate.fronts.http.responses import json_response
from imagegate.services import Services

router = APIRouter(tags=["Bria"])

FRONT = "bria"
TEXT_TO_IMAGE = "/bria/text-to-image"
TEXT_TO_VECTOR = "/bria/text-to-vector"
EDIT = "/bria/image/edit/{action}"
STATUS = "/bria/{request_id}"
BRIA_UPSTREAM_MODEL = "bria-fibo"
_TEXT_FIELDS = frozenset({"aspect_ratio"})


def _body_schema(model: type[TextToImageBody] | type[EditBody]) -> dict[str, Any]:
    schema = model.model_json_schema()
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


@router.post(
    TEXT_TO_IMAGE,
    summary="Generate images (synchronous)",
    openapi_extra=_body_schema(TextToImageBody),
)
async def text_to_image(request: Request, key: ApiKey = Depends(BRIA_KEY.require)) -> Response:
    return await _generate(request, key, TextToImageBody, route=TEXT_TO_IMAGE)


@router.post(
    TEXT_TO_VECTOR,
    summary="Generate SVG vector graphics (synchronous)",
    openapi_extra=_body_schema(TextToVectorBody),
)
async def text_to_vector(request: Request, key: ApiKey = Depends(BRIA_KEY.require)) -> Response:
    return await _generate(request, key, TextToVectorBody, route=TEXT_TO_VECTOR)


async def _generate(
    request: Request, key: ApiKey, model: type[TextToImageBody], *, route: str
) -> Response:
    """One request per result, each with its own seed, as Bria reports them."""
    async with front.metered(request, key, route=route):
        body = await parse_json_body(request, model)
        entry = _entry(request, key, body.model)
        vector = model is TextToVectorBody
        if vector and "vector" not in entry.spec.features:
            raise InvalidRequest(
                f"model {entry.spec.id!r} does not draw vector graphics (no 'vector' feature)",
                param="model",
                code="unsupported_operation",
            )
        seed = front.pick_seed(entry, body.seed)
        dropped = ["seed"] if seed is None and body.seed is not None else []
        size = None
        if body.aspect_ratio is not None:
            size = size_for_ratio(entry, *parse_ratio(body.aspect_ratio, param="aspect_ratio"))
    seeds = [_nth_seed(seed, index) for index in range(body.num_results)]
    all_params = [_text_params(body, entry, size, s, vector) for s in seeds]
    prepared = await front.prepare_all(request, key, all_params, route=route)
    services = services_of(request)
    deliveries = await asyncio.gather(*(services.images.run(item) for item in prepared))
    base_url, request_id = public_base_url(request), request_id_of(request)
    result = [
        {
            "urls": [front.asset_url(services, base_url, asset.id) for asset in delivery.assets],
            "seed": s,
            "uuid": f"{request_id}_{s if s is not None else index}",
        }
        for index, (delivery, s) in enumerate(zip(deliveries, seeds, strict=True))
    ]
    headers = front.ignored_headers(dropped, prepared[0].validated.ignored)
    return json_response({"result": result}, headers=headers)


def _nth_seed(seed: int | None, index: int) -> int | None:
    return None if seed is None else (seed + index) % (front.MAX_SEED + 1)


def _text_params(
    body: TextToImageBody, entry: CatalogEntry, size: str | None, seed: int | None, vector: bool
) -> GenerationParams:
    extras = body.model_params(_TEXT_FIELDS)
    if seed is not None:
        extras["seed"] = seed
    return GenerationParams(
        prompt=body.prompt,
        model=entry.spec.id,
        size=size,
        output_format="svg" if vector else None,
        extras=extras,
    )


@router.post(
    EDIT,
    status_code=202,
    summary="Edit an image (asynchronous): erase, gen_fill, expand, enhance, "
    "increase_resolution, replace_background, remove_background",
    openapi_extra=_body_schema(EditBody),
)
async def edit(action: str, request: Request, key: ApiKey = Depends(BRIA_KEY.require)) -> Response:
    services = services_of(request)
    async with front.metered(request, key, route=EDIT):
        spec = ACTIONS.get(action)
        if spec is None:
            raise NotFound(
                f"unknown action {action!r}; use one of {', '.join(ACTIONS)}",
                param="action",
                code="unknown_action",
            )
        body = await parse_json_body(request, EditBody)
        entry = _entry(request, key, body.model)
        input_spec(entry, spec.operation)  # a model without the feature fails before downloads
        unused = check_fields(body, spec)
        plan = await plan_edit(body, spec, entry, front.input_loader(services), key.id)
        seed = front.pick_seed(entry, body.seed)
        if seed is None and body.seed is not None:
            unused.append("seed")
        params = edit_params(body, spec, entry, plan, seed)
    prepared = await front.prepare(request, key, params, route=EDIT)
    task = await front.submit(
        request, prepared, meta={"front": FRONT, "action": action, "seed": seed}
    )
    status_url = f"{public_base_url(request)}/bria/{task.id}"
    headers = front.ignored_headers(unused, plan.dropped, prepared.validated.ignored)
    return json_response(
        {"request_id": task.id, "status_url": status_url}, status_code=202, headers=headers
    )


@router.get(STATUS, summary="Status and result of an asynchronous Bria request")
async def status(
    request_id: str, request: Request, key: ApiKey = Depends(BRIA_KEY.require)
) -> Response:
    services = services_of(request)
    task = await services.tasks.get(request_id, key.id)
    if task.meta.get("front") != FRONT:
        raise NotFound(f"no such request: {request_id!r}", param="request_id", code="not_found")
    return json_response(status_body(services, task))


def _entry(request: Request, key: ApiKey, model: str | None) -> CatalogEntry:
    return front.resolve(request, key, model or _default_model(request))


def _default_model(request: Request) -> str:
    """The operator's ``bria_model``, else Bria's own model once its upstream is configured."""
    services = services_of(request)
    if services.settings.bria_model:
        return services.settings.bria_model
    upstream = services.catalog.resolve(BRIA_UPSTREAM_MODEL)
    return BRIA_UPSTREAM_MODEL if upstream is not None and upstream.available else "sketch"


def status_body(services: Services, task: TaskRecord) -> dict[str, Any]:
    """The status answer: ``result`` once COMPLETED, ``error`` once failed (as Bria sends)."""
    body: dict[str, Any] = {"request_id": task.id, "status": "IN_PROGRESS"}
    if task.status == "succeeded":
        urls = front.output_urls(services, task)
        prompt = task.request.get("prompt") or None
        result: dict[str, Any] = {
            "image_url": urls[0] if urls else None,
            "seed": task.meta.get("seed"),
            "prompt": prompt,
            "refined_prompt": prompt,
        }
        if len(urls) > 1:
            result["image_urls"] = urls
        body.update(status="COMPLETED", result=result)
    elif task.status in ("failed", "canceled"):
        error = task.error or {"status": 409, "message": "the request was canceled"}
        code = int(error.get("status") or 500)
        body.update(
            status="UNKNOWN" if code >= 500 else "ERROR",
            error={"code": code, "message": error.get("message", "")},
        )
    return body
