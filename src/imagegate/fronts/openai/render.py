"""Render domain deliveries as OpenAI Images responses: JSON bodies and SSE streams."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import orjson

from imagegate.core.generation import Delivery, Prepared
from imagegate.core.requests import GeneratedImage, PartialImage, Usage
from imagegate.errors import ImagegateError, ServerError
from imagegate.fronts.http.errors import openai_error_body


def render_images(delivery: Delivery, url_for: Callable[[str], str]) -> dict[str, Any]:
    """The response body; ``url_for`` turns an asset id into a signed download URL."""
    prepared = delivery.prepared
    as_url = prepared.validated.response_format == "url"
    data: list[dict[str, Any]] = []
    for image, asset in zip(delivery.result.images, delivery.assets, strict=True):
        item: dict[str, Any] = (
            {"url": url_for(asset.id)} if as_url else {"b64_json": image.base64()}
        )
        if image.revised_prompt:
            item["revised_prompt"] = image.revised_prompt
        data.append(item)
    body: dict[str, Any] = {"created": int(time.time()), "data": data}
    if prepared.entry.spec.generate and prepared.entry.spec.generate.reports_details:
        request = prepared.validated.request
        body.update(
            background=delivery.result.background,
            output_format=request.output_format,
            quality=_reported_quality(prepared, delivery.result.quality),
            size=request.size,
        )
    if delivery.result.usage is not None:
        body["usage"] = usage_body(delivery.result.usage)
    return body


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


async def sse_events(
    events: AsyncIterator[PartialImage | Delivery], prepared: Prepared, *, prefix: str
) -> AsyncIterator[bytes]:
    """``<prefix>.partial_image`` events, then ``<prefix>.completed`` per image; a failure
    mid-stream becomes an ``error`` event (the HTTP status is already sent)."""
    request = prepared.validated.request
    preview_background = "transparent" if request.background == "transparent" else "opaque"
    common = {
        "size": request.size,
        "quality": _reported_quality(prepared, None),
        "output_format": request.output_format,
    }
    try:
        async for event in events:
            if isinstance(event, PartialImage):
                payload = _image_event(event.image, common, preview_background)
                payload["partial_image_index"] = event.partial_index
                yield _event(f"{prefix}.partial_image", payload)
                continue
            result = event.result
            usage = usage_body(result.usage) if result.usage else None
            for image in result.images:
                payload = _image_event(image, common, result.background)
                yield _event(f"{prefix}.completed", {**payload, "usage": usage})
    except Exception as exc:
        error = exc if isinstance(exc, ImagegateError) else ServerError("internal error")
        yield _event("error", openai_error_body(error, prepared.request_id))


def _image_event(image: GeneratedImage, common: dict[str, Any], background: str) -> dict[str, Any]:
    return {
        "b64_json": image.base64(),
        "created_at": int(time.time()),
        "background": background,
        **common,
    }


def _event(name: str, payload: dict[str, Any]) -> bytes:
    body = orjson.dumps({"type": name, **payload})
    return b"event: " + name.encode() + b"\ndata: " + body + b"\n\n"
