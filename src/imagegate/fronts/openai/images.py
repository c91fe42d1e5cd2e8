"""OpenAI Images wire format: generations (JSON), edits (multipart or JSON) and variations
(multipart), with SSE streaming for generations and edits."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any, Literal, TypeVar

import orjson
from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from starlette.datastructures import FormData, UploadFile
from starlette.responses import Response, StreamingResponse

from imagegate.core.keys import ApiKey
from imagegate.core.params import FileRef, GenerationParams, ImageSource
from imagegate.core.requests import Operation
from imagegate.errors import ImagegateError, InvalidRequest
from imagegate.fronts.http.auth import bearer_key, require_key
from imagegate.fronts.http.body import invalid_request_from, parse_json_body
from imagegate.fronts.http.deps import public_base_url, request_id_of, services_of
from imagegate.fronts.http.direct import keyed
from imagegate.fronts.http.multipart import read_form, read_upload
from imagegate.fronts.http.responses import PartsResponse, header_value
from imagegate.fronts.openai.render import render_images_parts, sse_events
from imagegate.fronts.openai.tasks import async_options
from imagegate.fronts.openai.tasks import submit as submit_task

router = APIRouter(tags=["OpenAI Images"])

GENERATIONS = "/v1/images/generations"
EDITS = "/v1/images/edits"
VARIATIONS = "/v1/images/variations"
MAX_INPUT_FILES = 17
"""One more than any model's image limit, so a 17th image gets a clear 400, not a parser error."""


class _OutputFields(BaseModel):
    """Fields every image route takes; model-specific extras are allowed and collected."""

    model_config = ConfigDict(extra="allow", strict=True)

    model: str | None = None
    n: int | None = Field(default=None, ge=1, le=10)
    size: str | None = None
    quality: str | None = None
    response_format: Literal["url", "b64_json"] | None = None
    output_format: Literal["png", "jpeg", "webp"] | None = None
    output_compression: int | None = Field(default=None, ge=0, le=100)
    background: Literal["transparent", "opaque", "auto"] | None = None
    moderation: Literal["low", "auto"] | None = None
    user: str | None = Field(default=None, max_length=256)
    stream: bool | None = None
    partial_images: int | None = Field(default=None, ge=0, le=3)

    def params(self, operation: Operation, prompt: str, **inputs: Any) -> GenerationParams:
        return GenerationParams(
            prompt=prompt,
            operation=operation,
            model=self.model,
            n=self.n or 1,
            size=self.size,
            quality=self.quality,
            response_format=self.response_format,
            output_format=self.output_format,
            output_compression=self.output_compression,
            background=self.background,
            style=getattr(self, "style", None),
            moderation=self.moderation,
            user=self.user,
            stream=bool(self.stream),
            partial_images=self.partial_images,
            extras=dict(self.model_extra or {}),
            **inputs,
        )


class GenerationsBody(_OutputFields):
    """``POST /v1/images/generations``."""

    prompt: str
    style: Literal["vivid", "natural"] | None = None


class ImageReference(BaseModel):
    """An image in the JSON edit form: a URL (or data URI) or an uploaded file's id."""

    model_config = ConfigDict(extra="forbid", strict=True)

    image_url: str | None = None
    file_id: str | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> ImageReference:
        if (self.image_url is None) == (self.file_id is None):
            raise ValueError("give exactly one of image_url and file_id")
        return self

    def source(self, param: str) -> ImageSource:
        if self.file_id is not None:
            return ImageSource(f"{param}.file_id", FileRef(self.file_id))
        return ImageSource(f"{param}.image_url", self.image_url or "")


class EditBody(_OutputFields):
    """``POST /v1/images/edits`` as JSON (the newer OpenAI form)."""

    prompt: str
    images: list[ImageReference] = Field(min_length=1)
    mask: ImageReference | None = None
    input_fidelity: Literal["high", "low"] | None = None


class EditFields(_OutputFields):
    """The text fields of the multipart edit form."""

    prompt: str
    input_fidelity: Literal["high", "low"] | None = None


class VariationFields(_OutputFields):
    """The text fields of the multipart variation form."""


FieldsT = TypeVar("FieldsT", bound=_OutputFields)


def _json_schema(model: type[BaseModel], content_type: str = "application/json") -> dict[str, Any]:
    return {
        "requestBody": {
            "required": True,
            "content": {content_type: {"schema": model.model_json_schema()}},
        }
    }


@router.post(
    GENERATIONS,
    summary="Create images from a prompt",
    openapi_extra=_json_schema(GenerationsBody),
)
async def create_image(request: Request, key: ApiKey = Depends(require_key)) -> Response:
    async def parse() -> GenerationParams:
        body = await parse_json_body(request, GenerationsBody)
        return body.params("generate", body.prompt)

    return await _serve(request, key, parse, route=GENERATIONS, stream_prefix="image_generation")


@router.post(
    EDITS,
    summary="Edit images (multipart with image/image[] and mask, or JSON with images[])",
    openapi_extra=_json_schema(EditBody),
)
async def edit_image(request: Request, key: ApiKey = Depends(require_key)) -> Response:
    async def parse() -> GenerationParams:
        if request.headers.get("content-type", "").startswith("application/json"):
            body = await parse_json_body(request, EditBody)
            images = [ref.source(f"images[{i}]") for i, ref in enumerate(body.images)]
            mask = body.mask.source("mask") if body.mask else None
            return body.params(
                "edit", body.prompt, images=images, mask=mask, input_fidelity=body.input_fidelity
            )
        async with read_form(request, max_files=MAX_INPUT_FILES) as form:
            fields = _form_fields(form, EditFields)
            images = await _form_images(request, form)
            mask = await _form_image(request, form, "mask")
        return fields.params(
            "edit", fields.prompt, images=images, mask=mask, input_fidelity=fields.input_fidelity
        )

    return await _serve(request, key, parse, route=EDITS, stream_prefix="image_edit")


@router.post(
    VARIATIONS,
    summary="Create variations of an image (multipart)",
    openapi_extra=_json_schema(VariationFields, "multipart/form-data"),
)
async def create_variation(request: Request, key: ApiKey = Depends(require_key)) -> Response:
    async def parse() -> GenerationParams:
        async with read_form(request, max_files=MAX_INPUT_FILES) as form:
            fields = _form_fields(form, VariationFields)
            images = await _form_images(request, form)
        if len(images) > 1:
            raise InvalidRequest("a variation takes exactly one image", param="image")
        return fields.params("variation", "", images=images)

    return await _serve(request, key, parse, route=VARIATIONS, stream_prefix="image_variation")


async def _serve(
    request: Request,
    key: ApiKey,
    parse: Callable[[], Awaitable[GenerationParams]],
    *,
    route: str,
    stream_prefix: str,
) -> Response:
    """Parse, prepare, then stream or run, and render — the same for every image route; a
    client asking for an async task gets it queued instead (:mod:`.tasks`)."""
    service = services_of(request).images
    request_id = request_id_of(request)
    started = time.perf_counter()
    try:
        params = await parse()
        task_options = await async_options(request, params)
    except ImagegateError as exc:
        service.record_rejection(key, exc, route=route, request_id=request_id, started=started)
        raise
    if task_options is not None:
        return await submit_task(request, key, params, task_options, route=route)
    prepared = await service.prepare(
        key, params, request_id=request_id, route=route, for_task=False
    )
    request.state.log = {"key_id": key.id, "model": prepared.entry.spec.id}
    ignored = prepared.validated.ignored
    headers = {"x-imagegate-ignored-params": header_value(",".join(ignored))} if ignored else {}
    if prepared.validated.stream:
        events = sse_events(service.run_stream(prepared), prepared, prefix=stream_prefix)
        return StreamingResponse(events, media_type="text/event-stream", headers=headers)
    delivery = await service.run(prepared)
    request.state.log.update(images=len(delivery.assets), cost=str(delivery.cost))
    link = services_of(request).assets.signed_path
    parts = render_images_parts(
        delivery, lambda asset_id: public_base_url(request) + link(asset_id)
    )
    if len(parts) == 1:
        return Response(parts[0], media_type="application/json", headers=headers)
    return PartsResponse(parts, media_type="application/json", headers=headers)


DIRECT_ROUTES = {
    ("POST", GENERATIONS): keyed(create_image, bearer_key),
    ("POST", EDITS): keyed(edit_image, bearer_key),
    ("POST", VARIATIONS): keyed(create_variation, bearer_key),
}


def _form_fields(form: FormData, model: type[FieldsT]) -> FieldsT:
    """The form's text fields; numbers and booleans arrive as text and are converted."""
    values = {
        name: _form_value(value)
        for name, value in form.multi_items()
        if isinstance(value, str) and name not in ("image", "image[]", "mask")
    }
    try:
        return model.model_validate(values, strict=False)
    except ValidationError as exc:
        raise invalid_request_from(exc) from None


def _form_value(text: str) -> Any:
    """Model extras (e.g. ``seed``) typed as JSON would type them; other text stays text."""
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        return text
    return value if isinstance(value, int | float | bool) else text


async def _form_images(request: Request, form: FormData) -> list[ImageSource]:
    parts = [*form.getlist("image"), *form.getlist("image[]")]
    names = ["image"] if len(parts) == 1 else [f"image[{i}]" for i in range(len(parts))]
    return [await _source(request, name, part) for name, part in zip(names, parts, strict=True)]


async def _form_image(request: Request, form: FormData, name: str) -> ImageSource | None:
    part = form.get(name)
    return None if part is None else await _source(request, name, part)


async def _source(request: Request, name: str, part: UploadFile | str) -> ImageSource:
    if isinstance(part, str):
        return ImageSource(name, part)
    limit = services_of(request).settings.max_body_bytes
    return ImageSource(name, await read_upload(part, param=name, max_bytes=limit))
