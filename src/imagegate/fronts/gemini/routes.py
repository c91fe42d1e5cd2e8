"""Gemini wire format under ``/v1beta``: ``generateContent``, ``streamGenerateContent`` (SSE or a
JSON array), Imagen's ``predict`` and the model list, with Google's key variants and envelope."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel
from starlette.responses import Response, StreamingResponse

from imagegate.core.catalog import CatalogEntry
from imagegate.core.generation import Delivery, Prepared
from imagegate.core.keys import ApiKey
from imagegate.core.params import GenerationParams
from imagegate.errors import ContentPolicyViolation, ImagegateError, InvalidRequest, NotFound
from imagegate.fronts.gemini.auth import require_gemini_key
from imagegate.fronts.gemini.render import (
    blocked_response,
    content_chunks,
    content_response,
    filtered_predictions,
    model_record,
    predict_response,
    sse_chunks,
)
from imagegate.fronts.gemini.wire import (
    ContentAsk,
    GenerateContentRequest,
    PredictRequest,
    content_ask,
    fitted_size,
    predict_ask,
)
from imagegate.fronts.http.body import parse_json_body
from imagegate.fronts.http.deps import request_id_of, services_of
from imagegate.fronts.http.responses import header_value, json_response

router = APIRouter(tags=["Gemini"])

MODELS = "/v1beta/models"
GENERATE = "/v1beta/models:generateContent"
STREAM = "/v1beta/models:streamGenerateContent"
PREDICT = "/v1beta/models:predict"
IMAGEN_DEFAULT_SAMPLES = 4

# Domain parameter names → the fields of each body that carry them, for errors and headers.
_CONTENT_FIELDS = {
    "prompt": "contents",
    "image": "contents",
    "n": "generationConfig.candidateCount",
    "size": "generationConfig.imageConfig",
    "seed": "generationConfig.seed",
    "output_format": "generationConfig.imageConfig.outputMimeType",
    "output_compression": "generationConfig.imageConfig.outputCompressionQuality",
}
_PREDICT_FIELDS = {
    "prompt": "instances[0].prompt",
    "n": "parameters.sampleCount",
    "size": "parameters.aspectRatio",
    "seed": "parameters.seed",
    "negative_prompt": "parameters.negativePrompt",
    "output_format": "parameters.outputOptions.mimeType",
    "output_compression": "parameters.outputOptions.compressionQuality",
}

Parsed = tuple[GenerationParams, ContentAsk, list[str]]


def _schema(model: type[BaseModel]) -> dict[str, Any]:
    schema = model.model_json_schema(by_alias=True)
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


@router.post(
    MODELS + "/{model:path}:generateContent",
    summary="Generate or edit images (Gemini generateContent)",
    openapi_extra=_schema(GenerateContentRequest),
)
async def generate_content(
    model: str, request: Request, key: ApiKey = Depends(require_gemini_key)
) -> Response:
    prepared, ask, headers = await _prepare_content(request, key, model, GENERATE)
    try:
        delivery = await _run(request, prepared)
    except ContentPolicyViolation as exc:
        return json_response(blocked_response(exc, prepared), headers=headers)
    return json_response(content_response(delivery, with_text=ask.with_text), headers=headers)


@router.post(
    MODELS + "/{model:path}:streamGenerateContent",
    summary="Generate or edit images, streamed (SSE with alt=sse, else a JSON array)",
    openapi_extra=_schema(GenerateContentRequest),
)
async def stream_generate_content(
    model: str,
    request: Request,
    alt: Literal["sse", "json"] | None = Query(None, description="sse: server-sent events"),
    key: ApiKey = Depends(require_gemini_key),
) -> Response:
    prepared, ask, headers = await _prepare_content(request, key, model, STREAM)
    if alt == "sse":
        events = sse_chunks(lambda: _run(request, prepared), prepared, with_text=ask.with_text)
        return StreamingResponse(events, media_type="text/event-stream", headers=headers)
    try:
        chunks = content_chunks(await _run(request, prepared), with_text=ask.with_text)
    except ContentPolicyViolation as exc:
        chunks = [blocked_response(exc, prepared)]
    return json_response(chunks, headers=headers)


@router.post(
    MODELS + "/{model:path}:predict",
    summary="Generate images (Imagen predict)",
    openapi_extra=_schema(PredictRequest),
)
async def predict(
    model: str, request: Request, key: ApiKey = Depends(require_gemini_key)
) -> Response:
    async def parse() -> Parsed:
        ask = predict_ask(await parse_json_body(request, PredictRequest))
        entry = _resolve(request, key, model, "predict")
        if ask.n is None and entry.spec.generate is not None:
            ask.n = min(IMAGEN_DEFAULT_SAMPLES, entry.spec.generate.max_n)
        size, adjusted = fitted_size(entry.spec.generate, ask.aspect_ratio, ask.image_size)
        return _params(model, ask, size), ask, adjusted

    prepared, _, headers = await _prepare(request, key, parse, PREDICT, _PREDICT_FIELDS)
    try:
        delivery = await _run(request, prepared)
    except ContentPolicyViolation as exc:
        if exc.stage == "prompt":
            raise
        return json_response(filtered_predictions(exc), headers=headers)
    return json_response(predict_response(delivery), headers=headers)


VERTEX_VERSIONS = ("v1", "v1beta1")
VERTEX_SCOPES = ("", "/projects/{project}/locations/{location}")
"""Where google-genai with ``vertexai=True`` and a custom ``base_url`` sends its calls:
``{version}/publishers/{publisher}/models/{model}:{method}``, behind
``projects/{p}/locations/{l}/`` when a project and location are configured."""


async def vertex_predict(
    publisher: str, model: str, request: Request, key: ApiKey = Depends(require_gemini_key)
) -> Response:
    """Imagen ``predict`` on Vertex AI's paths (the project and location are not used)."""
    return await predict(vertex_model(request, publisher, model), request, key)


async def vertex_generate_content(
    publisher: str, model: str, request: Request, key: ApiKey = Depends(require_gemini_key)
) -> Response:
    """``generateContent`` on Vertex AI's paths, so one Vertex-mode client does both."""
    return await generate_content(vertex_model(request, publisher, model), request, key)


async def vertex_stream_generate_content(
    publisher: str,
    model: str,
    request: Request,
    alt: Literal["sse", "json"] | None = Query(None, description="sse: server-sent events"),
    key: ApiKey = Depends(require_gemini_key),
) -> Response:
    name = vertex_model(request, publisher, model)
    return await stream_generate_content(name, request, alt, key)


def vertex_model(request: Request, publisher: str, model: str) -> str:
    """The catalogue name for ``publishers/{publisher}/models/{model}``: Google's models by
    their id; another publisher's as ``publisher/model`` when the catalogue knows that."""
    if publisher != "google" and services_of(request).catalog.resolve(f"{publisher}/{model}"):
        return f"{publisher}/{model}"
    return model


_SCOPE_PARAMETERS = [
    {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
    for name in ("project", "location")
]
"""The scope's path parameters, declared for OpenAPI (the endpoints do not read them)."""
_VERTEX_METHODS = (
    ("predict", vertex_predict, PredictRequest, "Generate images (Imagen predict)"),
    ("generateContent", vertex_generate_content, GenerateContentRequest, "Generate or edit"),
    (
        "streamGenerateContent",
        vertex_stream_generate_content,
        GenerateContentRequest,
        "Generate or edit, streamed",
    ),
)
for _version in VERTEX_VERSIONS:
    for _scope in VERTEX_SCOPES:
        for _method, _endpoint, _body, _summary in _VERTEX_METHODS:
            router.add_api_route(
                f"/{_version}{_scope}/publishers/{{publisher}}/models/{{model}}:{_method}",
                _endpoint,
                methods=["POST"],
                summary=f"{_summary} (Vertex AI {_version} path)",
                name=f"vertex_{_method}_{_version}{'_scoped' if _scope else ''}",
                openapi_extra={**_schema(_body), "parameters": _SCOPE_PARAMETERS if _scope else []},
            )


@router.post(MODELS + "/{path:path}", include_in_schema=False)
async def unknown_method(path: str) -> Response:
    """Any other ``models/{model}:{method}``: Google answers 404."""
    model, colon, method = path.rpartition(":")
    what = f"method {method!r} on models/{model}" if colon else f"models/{path}"
    raise NotFound(f"{what} does not exist; use generateContent, streamGenerateContent or predict")


@router.get(MODELS, summary="Models this key can use (Gemini list shape)")
async def list_models(
    request: Request,
    key: ApiKey = Depends(require_gemini_key),
    page_size: int = Query(50, alias="pageSize", ge=1, le=1000),
    page_token: str | None = Query(None, alias="pageToken"),
) -> Response:
    entries = [
        entry
        for entry in services_of(request).catalog
        if entry.available and key.may_use_model(entry.spec.id, tuple(entry.spec.aliases))
    ]
    start = _page_start(page_token)
    body: dict[str, Any] = {"models": [model_record(e) for e in entries[start : start + page_size]]}
    if start + page_size < len(entries):
        body["nextPageToken"] = str(start + page_size)
    return json_response(body)


@router.get(MODELS + "/{model:path}", summary="One model (Gemini shape)")
async def get_model(
    model: str, request: Request, key: ApiKey = Depends(require_gemini_key)
) -> Response:
    return json_response(model_record(_resolve(request, key, model, None)))


async def _prepare_content(
    request: Request, key: ApiKey, model: str, route: str
) -> tuple[Prepared, ContentAsk, dict[str, str]]:
    async def parse() -> Parsed:
        ask = content_ask(await parse_json_body(request, GenerateContentRequest))
        entry = _resolve(request, key, model, route.rpartition(":")[2])
        size, adjusted = fitted_size(entry.spec.generate, ask.aspect_ratio, ask.image_size)
        return _params(model, ask, size), ask, adjusted

    return await _prepare(request, key, parse, route, _CONTENT_FIELDS)


async def _prepare(
    request: Request,
    key: ApiKey,
    parse: Callable[[], Awaitable[Parsed]],
    route: str,
    fields: Mapping[str, str],
) -> tuple[Prepared, ContentAsk, dict[str, str]]:
    """Parse, then validate and bind a deployment; errors name the body's own fields."""
    service = services_of(request).images
    request_id = request_id_of(request)
    started = time.perf_counter()
    try:
        params, ask, adjusted = await parse()
    except ImagegateError as exc:
        service.record_rejection(key, exc, route=route, request_id=request_id, started=started)
        raise _in_wire_terms(exc, fields) from None
    try:
        prepared = await service.prepare(
            key, params, request_id=request_id, route=route, for_task=False
        )
    except ImagegateError as exc:
        raise _in_wire_terms(exc, fields) from None
    request.state.log = {"key_id": key.id, "model": prepared.entry.spec.id}
    ignored = [*ask.ignored, *(fields.get(name, name) for name in prepared.validated.ignored)]
    headers = {}
    if ignored:
        headers["x-imagegate-ignored-params"] = header_value(",".join(ignored))
    if adjusted:
        headers["x-imagegate-adjusted-params"] = header_value(",".join(adjusted))
    return prepared, ask, headers


async def _run(request: Request, prepared: Prepared) -> Delivery:
    delivery = await services_of(request).images.run(prepared)
    request.state.log.update(images=len(delivery.assets), cost=str(delivery.cost))
    return delivery


def _params(model: str, ask: ContentAsk, size: str | None) -> GenerationParams:
    return GenerationParams(
        prompt=ask.prompt,
        operation="edit" if ask.images else "generate",
        model=model,
        n=ask.n or 1,
        size=size,
        response_format="b64_json",
        output_format=ask.output_format,
        output_compression=ask.output_compression,
        extras=dict(ask.extras),
        images=ask.images,
    )


def _resolve(request: Request, key: ApiKey, name: str, method: str | None) -> CatalogEntry:
    """The model a key may use, with Google's wording when it does not exist."""
    try:
        return services_of(request).images.resolve_model(key, name)
    except NotFound as exc:
        action = f", or is not supported for {method}" if method else ""
        raise NotFound(
            f"models/{name} is not found for API version v1beta{action}; "
            "GET /v1beta/models lists the models you can use",
            param="model",
            code=exc.code,
        ) from None


def _in_wire_terms(error: ImagegateError, fields: Mapping[str, str]) -> ImagegateError:
    """The same error, naming the request field a Gemini client sent instead of the domain's."""
    wire = fields.get(error.param or "")
    if wire is not None:
        error.message = f"{wire}: {error.message}"
        error.param = wire
    return error


def _page_start(token: str | None) -> int:
    if token is None or token == "":
        return 0
    if not (token.isascii() and token.isdigit()) or len(token) > 9:
        raise InvalidRequest("pageToken is not one this gateway issued", param="pageToken")
    return int(token)
