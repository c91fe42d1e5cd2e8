"""Images through ``POST /v1/chat/completions``, in OpenRouter's shape (how chat apps reach image
models): the prompt is the last user message's text; images of earlier turns (assistant
``images``) and ``image_url`` parts feed an edit on models that edit; the answer carries
``message.images`` as data URLs, or ``delta.images`` chunks when streamed. Billing, limits and
storage are the image routes' own (the same :class:`~imagegate.core.generation.ImageService`
flow). Only image models are served: imagegate is not a text-LLM gateway."""

from __future__ import annotations

import asyncio
import math
import secrets
import time
from collections.abc import AsyncIterator
from typing import Any

import orjson
from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import Response, StreamingResponse

from imagegate.core.catalog import CatalogEntry
from imagegate.core.generation import Delivery, ImageService, Prepared
from imagegate.core.keys import ApiKey
from imagegate.core.params import GenerationParams, ImageSource
from imagegate.core.requests import OPERATION_FEATURES
from imagegate.errors import ImagegateError, InvalidRequest, ServerError
from imagegate.fronts.common import tasks as front
from imagegate.fronts.common.sizes import parse_ratio, size_for_output
from imagegate.fronts.http.auth import require_key
from imagegate.fronts.http.body import parse_json_body
from imagegate.fronts.http.deps import request_id_of, services_of
from imagegate.fronts.http.errors import openai_error_body
from imagegate.fronts.http.responses import json_response

router = APIRouter(tags=["OpenAI Chat Completions (images)"])

CHAT = "/v1/chat/completions"
KEEPALIVE_SECONDS = 10.0
"""An SSE comment this often while the image is drawn (as OpenRouter does), so proxies that cut
idle streams keep it open."""
_SIDES = {"1K": 1024, "2K": 2048, "4K": 4096}
_SIDE_MULTIPLE = 64
_PASSED_ON = frozenset({"seed"})
"""Chat fields that are also model parameters (passed on when the model declares them)."""


class ImageConfig(BaseModel):
    """OpenRouter's ``image_config``."""

    model_config = ConfigDict(extra="allow", strict=True)

    aspect_ratio: str | None = None
    image_size: str | None = None


class ChatBody(BaseModel):
    """The chat fields imagegate reads; the rest of a chat request is accepted and reported
    in ``x-imagegate-ignored-params``."""

    model_config = ConfigDict(extra="allow", strict=True)

    model: str | None = None
    messages: list[dict[str, Any]] = Field(min_length=1)
    stream: bool | None = None
    n: int | None = Field(default=None, ge=1, le=10)
    modalities: list[str] | None = None
    image_config: ImageConfig | None = None
    size: str | None = None
    user: str | None = Field(default=None, max_length=256)


@router.post(
    CHAT,
    summary="Images from a chat (OpenRouter's message.images shape; image models only)",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": ChatBody.model_json_schema()}},
        }
    },
)
async def chat_completions(request: Request, key: ApiKey = Depends(require_key)) -> Response:
    async with front.metered(request, key, route=CHAT):
        body = await parse_json_body(request, ChatBody)
        entry = front.resolve(request, key, body.model)
        params, dropped = chat_params(body, entry)
    service = services_of(request).images
    prepared = await service.prepare(
        key, params, request_id=request_id_of(request), route=CHAT, for_task=False
    )
    request.state.log = {"key_id": key.id, "model": prepared.entry.spec.id}
    headers = front.ignored_headers(dropped, prepared.validated.ignored)
    completion_id = "chatcmpl-" + secrets.token_hex(12)
    if body.stream:
        chunks = _chunks(service, prepared, completion_id)
        return StreamingResponse(chunks, media_type="text/event-stream", headers=headers)
    delivery = await service.run(prepared)
    request.state.log.update(images=len(delivery.assets), cost=str(delivery.cost))
    return json_response(completion(delivery, completion_id), headers=headers)


def chat_params(body: ChatBody, entry: CatalogEntry) -> tuple[GenerationParams, list[str]]:
    """The image request a chat body asks of ``entry``, and the chat fields left unused."""
    features = entry.spec.features
    if OPERATION_FEATURES["generate"] not in features or entry.spec.generate is None:
        raise InvalidRequest(
            f"model {entry.spec.id!r} does not draw images; chat completions here serve image "
            "models only (GET /api/models?feature=text-to-image lists them)",
            param="model",
            code="model_not_supported",
        )
    if body.modalities is not None and "image" not in body.modalities:
        raise InvalidRequest("modalities must include 'image'", param="modalities")
    prompt = _last_user_text(body.messages)
    dropped = sorted(name for name in body.model_extra or {} if name not in _PASSED_ON)
    images = _input_images(body.messages)
    edits = OPERATION_FEATURES["edit"] in features and entry.spec.edit is not None
    if images and not edits:
        dropped.append("image_url")
        images = []
    if images and entry.spec.edit is not None:
        images = images[: entry.spec.edit.max_images]
    extras = {name: value for name, value in (body.model_extra or {}).items() if name in _PASSED_ON}
    params = GenerationParams(
        prompt=prompt,
        operation="edit" if images else "generate",
        model=entry.spec.id,
        n=body.n or 1,
        size=body.size or _configured_size(body.image_config, entry),
        user=body.user,
        response_format="b64_json",
        extras=extras,
        images=images,
    )
    return params, dropped


def _last_user_text(messages: list[dict[str, Any]]) -> str:
    for index in range(len(messages) - 1, -1, -1):
        message = messages[index]
        if message.get("role") == "user":
            text = "\n".join(_texts(message.get("content"), f"messages[{index}].content")).strip()
            if not text:
                raise InvalidRequest(
                    "the last user message has no text; it is the image prompt",
                    param=f"messages[{index}].content",
                )
            return text
    raise InvalidRequest("messages has no user message (the image prompt)", param="messages")


def _texts(content: Any, param: str) -> list[str]:
    if content is None:
        return []
    if isinstance(content, str):
        return [content]
    if not isinstance(content, list):
        raise InvalidRequest(f"{param} must be a string or a list of parts", param=param)
    texts = []
    for index, part in enumerate(content):
        if not isinstance(part, dict):
            raise InvalidRequest(f"{param}[{index}] must be an object", param=f"{param}[{index}]")
        if part.get("type") == "text":
            text = part.get("text")
            if not isinstance(text, str):
                where = f"{param}[{index}].text"
                raise InvalidRequest(f"{where} must be a string", param=where)
            texts.append(text)
    return texts


def _input_images(messages: list[dict[str, Any]]) -> list[ImageSource]:
    """Every image of the conversation, the latest message's first (an edit works on its first
    image): ``image_url`` parts of any message and the ``images`` of assistant answers."""
    found: list[ImageSource] = []
    for index in range(len(messages) - 1, -1, -1):
        message = messages[index]
        content = message.get("content")
        if isinstance(content, list):
            for part_index, part in enumerate(content):
                if isinstance(part, dict) and part.get("type") == "image_url":
                    where = f"messages[{index}].content[{part_index}].image_url"
                    found.append(ImageSource(where, _url(part.get("image_url"), where)))
        if message.get("role") == "assistant" and isinstance(message.get("images"), list):
            for image_index, image in enumerate(message["images"]):
                where = f"messages[{index}].images[{image_index}].image_url"
                found.append(ImageSource(where, _url(_image_url_of(image), where)))
    return found


def _image_url_of(image: Any) -> Any:
    return image.get("image_url") if isinstance(image, dict) else None


def _url(value: Any, param: str) -> str:
    """``{"url": …}`` (OpenAI's shape) or a bare string (some clients)."""
    url = value.get("url") if isinstance(value, dict) else value
    if not isinstance(url, str) or not url:
        raise InvalidRequest(f"{param} must be an object with a url", param=param)
    return url


def _configured_size(config: ImageConfig | None, entry: CatalogEntry) -> str | None:
    """``image_config`` as a size the model takes: the aspect ratio at the 1K/2K/4K scale,
    exactly where the model offers it, else its nearest size in shape."""
    if config is None or (config.aspect_ratio is None and config.image_size is None):
        return None
    width, height = 1, 1
    if config.aspect_ratio is not None:
        width, height = parse_ratio(config.aspect_ratio, param="image_config.aspect_ratio")
    side = _SIDES.get((config.image_size or "1K").upper())
    if side is None:
        raise InvalidRequest(
            "image_config.image_size must be one of 1K, 2K, 4K", param="image_config.image_size"
        )
    scale = side / math.sqrt(width * height)
    wanted = [max(1, round(s * scale / _SIDE_MULTIPLE)) * _SIDE_MULTIPLE for s in (width, height)]
    return size_for_output(entry, wanted[0], wanted[1])


def completion(delivery: Delivery, completion_id: str) -> dict[str, Any]:
    """A ``chat.completion`` whose assistant message carries the images."""
    return {
        "id": completion_id,
        "object": "chat.completion",
        "created": int(time.time()),
        "model": delivery.prepared.entry.spec.id,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", **_content(delivery)},
                "finish_reason": "stop",
                "logprobs": None,
            }
        ],
        "usage": _usage(delivery),
    }


def _content(delivery: Delivery) -> dict[str, Any]:
    images = [
        {
            "type": "image_url",
            "image_url": {"url": f"data:{image.mime_type};base64,{image.base64()}"},
        }
        for image in delivery.result.images
    ]
    return {"content": delivery.result.text or "", "images": images}


def _usage(delivery: Delivery) -> dict[str, int]:
    usage = delivery.result.usage
    prompt = usage.input_tokens if usage else 0
    output = usage.output_tokens if usage else 0
    return {"prompt_tokens": prompt, "completion_tokens": output, "total_tokens": prompt + output}


async def _chunks(
    service: ImageService, prepared: Prepared, completion_id: str
) -> AsyncIterator[bytes]:
    """Keep-alive comments while the image is drawn, then one chunk with the images, one with
    ``finish_reason`` and usage, and ``[DONE]``; a failure becomes an ``error`` chunk."""
    common = {
        "id": completion_id,
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": prepared.entry.spec.id,
    }
    run = asyncio.ensure_future(service.run(prepared))
    try:
        while not run.done():
            done, _ = await asyncio.wait({run}, timeout=KEEPALIVE_SECONDS)
            if not done:
                yield b": imagegate processing\n\n"
        delivery = run.result()
    except Exception as exc:
        error = exc if isinstance(exc, ImagegateError) else ServerError("internal error")
        yield _data({**common, **openai_error_body(error, prepared.request_id)})
        return
    finally:
        run.cancel()  # the client went away: the run stops and its hold goes back
    delta = {"role": "assistant", **_content(delivery)}
    yield _data({**common, "choices": [{"index": 0, "delta": delta, "finish_reason": None}]})
    finish = {"index": 0, "delta": {}, "finish_reason": "stop"}
    yield _data({**common, "choices": [finish], "usage": _usage(delivery)})
    yield b"data: [DONE]\n\n"


def _data(payload: dict[str, Any]) -> bytes:
    return b"data: " + orjson.dumps(payload) + b"\n\n"
