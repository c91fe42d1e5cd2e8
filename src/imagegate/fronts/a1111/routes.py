"""The ``/sdapi/v1`` routes: generation through the one generation flow, the key's checkpoint
option, and the lists A1111 clients read at start-up (answered plausibly: imagegate has no
samplers or upscalers of its own to choose from)."""

from __future__ import annotations

import time
from typing import Any

import orjson
from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel
from starlette.responses import Response

from imagegate.core.catalog import CatalogEntry
from imagegate.core.generation import Delivery
from imagegate.core.keys import ApiKey
from imagegate.core.params import GenerationParams, ImageSource, input_spec
from imagegate.errors import InvalidRequest
from imagegate.fronts.a1111 import lists
from imagegate.fronts.a1111.auth import require_a1111_key
from imagegate.fronts.a1111.images import load_img2img_inputs
from imagegate.fronts.a1111.wire import Img2ImgBody, Txt2ImgBody, model_extras
from imagegate.fronts.common import tasks as front
from imagegate.fronts.common.sizes import nearest_size
from imagegate.fronts.http.body import parse_json_body
from imagegate.fronts.http.deps import request_id_of, services_of
from imagegate.fronts.http.responses import json_response

router = APIRouter(tags=["AUTOMATIC1111"])

BASE = "/sdapi/v1"
TXT2IMG = BASE + "/txt2img"
IMG2IMG = BASE + "/img2img"
CHECKPOINT_SETTING = "a1111.sd_model_checkpoint"
WIRE_NAMES = {"input_fidelity": "denoising_strength"}
"""Domain parameter names → the A1111 field that set them, for the ignored-params header."""


def _schema(model: type[BaseModel]) -> dict[str, Any]:
    content = {"application/json": {"schema": model.model_json_schema()}}
    return {"requestBody": {"required": True, "content": content}}


@router.post(TXT2IMG, summary="Generate images from a prompt", openapi_extra=_schema(Txt2ImgBody))
async def txt2img(request: Request, key: ApiKey = Depends(require_a1111_key)) -> Response:
    return await _generate(request, key, Txt2ImgBody, route=TXT2IMG)


@router.post(
    IMG2IMG,
    summary="Change an image from a prompt (mask: white = change)",
    openapi_extra=_schema(Img2ImgBody),
)
async def img2img(request: Request, key: ApiKey = Depends(require_a1111_key)) -> Response:
    return await _generate(request, key, Img2ImgBody, route=IMG2IMG)


async def _generate(
    request: Request, key: ApiKey, model: type[Txt2ImgBody], *, route: str
) -> Response:
    services = services_of(request)
    async with front.metered(request, key, route=route):
        body = await parse_json_body(request, model)
        entry = front.resolve(request, key, await _checkpoint(request, key, body.checkpoint()))
        params, ignored, adjusted, seed = await _params(request, key, body, entry)
    prepared = await services.images.prepare(
        key, params, request_id=request_id_of(request), route=route, for_task=False
    )
    request.state.log = {"key_id": key.id, "model": prepared.entry.spec.id}
    delivery = await services.images.run(prepared)
    request.state.log.update(images=len(delivery.assets), cost=str(delivery.cost))
    headers = {
        **front.ignored_headers(
            ignored, (WIRE_NAMES.get(name, name) for name in prepared.validated.ignored)
        ),
        **front.adjusted_headers([adjusted] if adjusted else []),
    }
    answer = {
        "images": [image.base64() for image in delivery.result.images],
        "parameters": body.echo(),
        "info": _info(body, delivery, seed),
    }
    return Response(orjson.dumps(answer), media_type="application/json", headers=headers)


async def _params(
    request: Request, key: ApiKey, body: Txt2ImgBody, entry: CatalogEntry
) -> tuple[GenerationParams, list[str], str, int | None]:
    spec = entry.spec.generate
    if spec is None:
        raise InvalidRequest(f"model {entry.spec.id!r} does not make images", param="model")
    size, changed = nearest_size(entry, body.width, body.height)
    adjusted = f"size={body.width}x{body.height}->{size}" if changed else ""
    extras, ignored = model_extras(body, spec.extras)
    given_seed = body.seed if body.seed is not None and body.seed >= 0 else None
    seed = front.pick_seed(entry, given_seed)
    if seed is not None:
        extras["seed"] = seed
    elif given_seed is not None:
        ignored.append("seed")
    params = GenerationParams(
        prompt=body.prompt,
        model=entry.spec.id,
        n=body.batch_size * body.n_iter,
        size=size,
        response_format="b64_json",
        output_format="png",
        extras=extras,
    )
    if isinstance(body, Img2ImgBody):
        input_spec(entry, "edit")  # a model that cannot edit is refused before any decoding
        image, mask = await load_img2img_inputs(services_of(request), key, entry, body)
        params.operation = "edit"
        params.images = [ImageSource("init_images[0]", image)]
        params.mask = ImageSource("mask", mask) if mask is not None else None
        if body.denoising_strength is not None:
            params.input_fidelity = "high" if body.denoising_strength < 0.5 else "low"
        if len(body.init_images) > 1:
            ignored.append("init_images[1:]")
    return params, ignored, adjusted, seed


async def _checkpoint(request: Request, key: ApiKey, override: str | None) -> str | None:
    """The model a generation uses: the request's override, the key's option, the default."""
    if override:
        return override
    return await services_of(request).key_settings.get(key.id, CHECKPOINT_SETTING)


def _info(body: Txt2ImgBody, delivery: Delivery, seed: int | None) -> str:
    request = delivery.prepared.validated.request
    count = len(delivery.result.images)
    seeds = [seed + i for i in range(count)] if seed is not None else [-1] * count
    info = {
        "prompt": body.prompt,
        "all_prompts": [body.prompt] * count,
        "negative_prompt": body.negative_prompt or "",
        "seed": seeds[0] if seeds else -1,
        "all_seeds": seeds,
        "width": request.width,
        "height": request.height,
        "sampler_name": body.sampler_name,
        "steps": body.steps,
        "cfg_scale": body.cfg_scale,
        "batch_size": body.batch_size,
        "n_iter": body.n_iter,
        "sd_model_name": request.model,
        "sd_model_hash": None,
        "job_timestamp": time.strftime("%Y%m%d%H%M%S"),
        "infotexts": [body.prompt] * count,
    }
    return orjson.dumps(info).decode()


@router.get(BASE + "/sd-models", summary="The models this key may use, as checkpoints")
async def sd_models(request: Request, key: ApiKey = Depends(require_a1111_key)) -> Response:
    return json_response([lists.checkpoint(entry) for entry in _usable(request, key)])


@router.get(BASE + "/options", summary="Settings; sd_model_checkpoint is this key's model")
async def get_options(request: Request, key: ApiKey = Depends(require_a1111_key)) -> Response:
    chosen = await _checkpoint(request, key, None) or services_of(request).settings.default_model
    usable = _usable(request, key)
    if chosen not in {entry.spec.id for entry in usable}:
        chosen = usable[0].spec.id if usable else ""  # a model this key can actually use
    return json_response(lists.options(chosen))


@router.post(BASE + "/options", summary="Choose this key's model (sd_model_checkpoint)")
async def set_options(request: Request, key: ApiKey = Depends(require_a1111_key)) -> Response:
    raw = await request.body()
    try:
        options = orjson.loads(raw) if raw.strip() else None
    except orjson.JSONDecodeError:
        raise InvalidRequest("the request body is not valid JSON") from None
    if not isinstance(options, dict):
        raise InvalidRequest("the request body must be a JSON object of options")
    chosen = options.get("sd_model_checkpoint")
    if chosen is not None:
        if not isinstance(chosen, str) or not chosen:
            raise InvalidRequest("sd_model_checkpoint must be a model id", param="model")
        entry = front.resolve(request, key, chosen)
        await services_of(request).key_settings.set(key.id, CHECKPOINT_SETTING, entry.spec.id)
    return json_response(None)


def _usable(request: Request, key: ApiKey) -> list[CatalogEntry]:
    return [
        entry
        for entry in services_of(request).catalog
        if entry.available
        and entry.spec.generate is not None
        and key.may_use_model(entry.spec.id, tuple(entry.spec.aliases))
    ]


@router.get(BASE + "/samplers", summary="Sampler names (accepted, not used)")
async def samplers(_: ApiKey = Depends(require_a1111_key)) -> Response:
    return json_response(lists.SAMPLERS)


@router.get(BASE + "/schedulers", summary="Scheduler names (accepted, not used)")
async def schedulers(_: ApiKey = Depends(require_a1111_key)) -> Response:
    return json_response(lists.SCHEDULERS)


@router.get(BASE + "/upscalers", summary="Upscaler names (accepted, not used)")
async def upscalers(_: ApiKey = Depends(require_a1111_key)) -> Response:
    return json_response(lists.UPSCALERS)


@router.get(BASE + "/latent-upscale-modes", summary="Latent upscale modes (accepted, not used)")
async def latent_upscale_modes(_: ApiKey = Depends(require_a1111_key)) -> Response:
    return json_response(lists.LATENT_UPSCALE_MODES)


@router.get(BASE + "/sd-vae", summary="VAEs (none: the models bring their own)")
async def sd_vae(_: ApiKey = Depends(require_a1111_key)) -> Response:
    return json_response([])


@router.get(BASE + "/progress", summary="Progress (generation answers synchronously: idle)")
async def progress(_: ApiKey = Depends(require_a1111_key)) -> Response:
    return json_response(lists.IDLE_PROGRESS)


@router.post(BASE + "/interrupt", summary="Interrupt (nothing runs between requests)")
async def interrupt(_: ApiKey = Depends(require_a1111_key)) -> Response:
    return json_response({})
