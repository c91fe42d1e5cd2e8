"""OpenAI Images wire format: ``POST /v1/images/generations`` (JSON and SSE streaming)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from typing import Any, Literal

import orjson
import pybase64
from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import Response, StreamingResponse

from imagegate.api._auth import require_key
from imagegate.api._body import parse_json_body
from imagegate.api._deps import public_base_url, request_id_of, services_of
from imagegate.api._errors import openai_error_body
from imagegate.core.generation import Delivery, Prepared
from imagegate.core.keys import ApiKey
from imagegate.core.params import GenerationParams
from imagegate.core.requests import GeneratedImage, PartialImage, Usage
from imagegate.errors import ImagegateError, ServerError

router = APIRouter(tags=["OpenAI Images"])

ROUTE = "/v1/images/generations"


class GenerationsBody(BaseModel):
    """The request body, as OpenAI documents it; model-specific extras are allowed."""

    model_config = ConfigDict(extra="allow", strict=True)

    prompt: str
    model: str | None = None
    n: int | None = Field(default=None, ge=1, le=10)
    size: str | None = None
    quality: str | None = None
    response_format: Literal["url", "b64_json"] | None = None
    output_format: Literal["png", "jpeg", "webp"] | None = None
    output_compression: int | None = Field(default=None, ge=0, le=100)
    background: Literal["transparent", "opaque", "auto"] | None = None
    style: Literal["vivid", "natural"] | None = None
    moderation: Literal["low", "auto"] | None = None
    user: str | None = Field(default=None, max_length=256)
    stream: bool | None = None
    partial_images: int | None = Field(default=None, ge=0, le=3)

    def params(self) -> GenerationParams:
        return GenerationParams(
            prompt=self.prompt,
            model=self.model,
            n=self.n or 1,
            size=self.size,
            quality=self.quality,
            response_format=self.response_format,
            output_format=self.output_format,
            output_compression=self.output_compression,
            background=self.background,
            style=self.style,
            moderation=self.moderation,
            user=self.user,
            stream=bool(self.stream),
            partial_images=self.partial_images,
            extras=dict(self.model_extra or {}),
        )


class ImageData(BaseModel):
    b64_json: str | None = None
    url: str | None = None
    revised_prompt: str | None = None


class ImagesResponse(BaseModel):
    created: int
    data: list[ImageData]
    background: str | None = None
    output_format: str | None = None
    quality: str | None = None
    size: str | None = None
    usage: dict[str, Any] | None = None


@router.post(
    ROUTE,
    summary="Create images from a prompt",
    responses={200: {"model": ImagesResponse}},
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": GenerationsBody.model_json_schema()}},
        }
    },
)
async def create_image(request: Request, key: ApiKey = Depends(require_key)) -> Response:
    service = services_of(request).images
    request_id = request_id_of(request)
    try:
        body = await parse_json_body(request, GenerationsBody)
    except ImagegateError as exc:
        started = time.perf_counter()
        service.record_rejection(key, exc, route=ROUTE, request_id=request_id, started=started)
        raise
    prepared = service.prepare(key, body.params(), request_id=request_id, route=ROUTE)
    request.state.log = {"key_id": key.id, "model": prepared.entry.spec.id}
    headers = _ignored_header(prepared)
    if prepared.validated.stream:
        return StreamingResponse(
            _sse(request, prepared), media_type="text/event-stream", headers=headers
        )
    delivery = await service.run(prepared)
    request.state.log.update(images=len(delivery.assets), cost=str(delivery.cost))
    link = services_of(request).assets.signed_path
    base_url = public_base_url(request)
    content = orjson.dumps(_render(delivery, lambda asset_id: base_url + link(asset_id)))
    return Response(content, media_type="application/json", headers=headers)


def _ignored_header(prepared: Prepared) -> dict[str, str]:
    ignored = prepared.validated.ignored
    return {"x-imagegate-ignored-params": ",".join(ignored)} if ignored else {}


def _render(delivery: Delivery, url_for: Callable[[str], str]) -> dict[str, Any]:
    """The response body; ``url_for`` turns an asset id into a signed download URL."""
    prepared = delivery.prepared
    as_url = prepared.validated.response_format == "url"
    data: list[dict[str, Any]] = []
    for image, asset in zip(delivery.result.images, delivery.assets, strict=True):
        item: dict[str, Any] = (
            {"url": url_for(asset.id)} if as_url else {"b64_json": _b64(image.data)}
        )
        if image.revised_prompt:
            item["revised_prompt"] = image.revised_prompt
        data.append(item)
    body: dict[str, Any] = {"created": int(time.time()), "data": data}
    if prepared.entry.spec.generate and prepared.entry.spec.generate.reports_details:
        body.update(_details(delivery))
    if delivery.result.usage is not None:
        body["usage"] = usage_body(delivery.result.usage)
    return body


def _details(delivery: Delivery) -> dict[str, Any]:
    request = delivery.prepared.validated.request
    return {
        "background": delivery.result.background,
        "output_format": request.output_format,
        "quality": _reported_quality(delivery.prepared, delivery.result.quality),
        "size": request.size,
    }


def _reported_quality(prepared: Prepared, quality: str | None) -> str:
    quality = quality or prepared.validated.request.quality
    spec = prepared.entry.spec.generate
    if quality == "auto" and spec is not None and spec.auto_quality:
        return spec.auto_quality
    return quality


def usage_body(usage: Usage) -> dict[str, Any]:
    """Usage in the gpt-image shape."""
    return {
        "input_tokens": usage.input_tokens,
        "input_tokens_details": {
            "image_tokens": usage.input_image_tokens,
            "text_tokens": usage.input_text_tokens,
        },
        "output_tokens": usage.output_tokens,
        "output_tokens_details": {
            "image_tokens": usage.output_image_tokens,
            "text_tokens": usage.output_text_tokens,
        },
        "total_tokens": usage.total_tokens,
    }


def _b64(data: bytes) -> str:
    return pybase64.b64encode(data).decode("ascii")


async def _sse(request: Request, prepared: Prepared) -> AsyncIterator[bytes]:
    service = services_of(request).images
    requested_background = prepared.validated.request.background
    preview_background = "transparent" if requested_background == "transparent" else "opaque"
    common = {
        "size": prepared.validated.request.size,
        "quality": _reported_quality(prepared, None),
        "output_format": prepared.validated.request.output_format,
    }
    try:
        async for event in service.run_stream(prepared):
            if isinstance(event, PartialImage):
                yield _event(
                    "image_generation.partial_image",
                    {
                        **_image_event(event.image, common, preview_background),
                        "partial_image_index": event.partial_index,
                    },
                )
                continue
            background = event.result.background
            usage = usage_body(event.result.usage) if event.result.usage else None
            for image in event.result.images:
                yield _event(
                    "image_generation.completed",
                    {**_image_event(image, common, background), "usage": usage},
                )
    except Exception as exc:
        error = exc if isinstance(exc, ImagegateError) else ServerError("internal error")
        yield _event("error", {**openai_error_body(error, prepared.request_id)})


def _image_event(image: GeneratedImage, common: dict[str, Any], background: str) -> dict[str, Any]:
    return {
        "b64_json": _b64(image.data),
        "created_at": int(time.time()),
        "background": background,
        **common,
    }


def _event(name: str, payload: dict[str, Any]) -> bytes:
    return (
        b"event: " + name.encode() + b"\ndata: " + orjson.dumps({"type": name, **payload}) + b"\n\n"
    )
