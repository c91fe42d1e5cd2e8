"""Render domain deliveries as OpenAI Images responses: JSON bodies and SSE streams."""

from __future__ import annotations

import secrets
import time
from collections.abc import AsyncIterator, Callable
from typing import Any, Final

import orjson

from imagegate.core.catalog import CatalogEntry
from imagegate.core.generation import Delivery, Prepared
from imagegate.core.requests import GeneratedImage, PartialImage, Usage
from imagegate.errors import ImagegateError, ServerError
from imagegate.fronts.http.errors import openai_error_body

_SLOT: Final = f"\x00b64:{secrets.token_hex(8)}:"
"""Stands for an upstream's base64 text in the rendered body until it is spliced in (random:
no upstream can write it into a revised prompt on purpose)."""


def render_images_json(delivery: Delivery, url_for: Callable[[str], str]) -> bytes:
    """:func:`render_images` as JSON bytes (:func:`render_images_parts`, joined)."""
    parts = render_images_parts(delivery, url_for)
    return parts[0] if len(parts) == 1 and isinstance(parts[0], bytes) else b"".join(parts)


def render_images_parts(
    delivery: Delivery, url_for: Callable[[str], str]
) -> list[bytes | memoryview]:
    """:func:`render_images` as JSON, in parts that, joined, are the body. Base64 text kept as
    a view of the upstream's body is its own part, as it is: not made a ``str``, escaped and
    copied. orjson renders a short slot in its place, and the body is cut at the slots."""
    kept: list[memoryview] = []

    def b64_of(image: GeneratedImage) -> str:
        if isinstance(image.b64, memoryview):
            kept.append(image.b64)
            return f"{_SLOT}{len(kept) - 1}"
        return image.base64()

    rendered = orjson.dumps(render_images(delivery, url_for, b64_of=b64_of))
    parts: list[bytes | memoryview] = []
    last = 0
    for n, text in enumerate(kept):
        slot = orjson.dumps(f"{_SLOT}{n}")[1:-1]  # as orjson wrote it: NUL as \u0000
        at = rendered.index(slot, last)
        parts += (rendered[last:at], text)
        last = at + len(slot)
    parts.append(rendered[last:] if last else rendered)
    return parts


def render_images(
    delivery: Delivery,
    url_for: Callable[[str], str],
    *,
    b64_of: Callable[[GeneratedImage], str] = GeneratedImage.base64,
) -> dict[str, Any]:
    """The response body; ``url_for`` turns an asset id into a signed download URL."""
    prepared = delivery.prepared
    result = delivery.result
    request = prepared.validated.request
    as_url = prepared.validated.response_format == "url"
    data = [
        image_item(url_for(asset.id) if as_url else b64_of(image), as_url, image.revised_prompt)
        for image, asset in zip(result.images, delivery.assets, strict=True)
    ]
    return images_response(
        data,
        prepared.entry,
        output_format=request.output_format,
        size=request.size,
        quality=result.quality or request.quality,
        background=result.background,
        usage=result.usage,
    )


def image_item(value: str, as_url: bool, revised_prompt: str | None) -> dict[str, Any]:
    """One ``data`` item: a URL or base64, and the prompt the model used when it says."""
    item: dict[str, Any] = {"url": value} if as_url else {"b64_json": value}
    if revised_prompt:
        item["revised_prompt"] = revised_prompt
    return item


def images_response(
    data: list[dict[str, Any]],
    entry: CatalogEntry | None,
    *,
    output_format: str,
    size: str,
    quality: str,
    background: str,
    usage: Usage | None,
    created: int | None = None,
) -> dict[str, Any]:
    """An ImagesResponse: the details fields only for models that report them (gpt-image
    style and the gateway's own), ``usage`` whenever the upstream reported it."""
    body: dict[str, Any] = {"created": created or int(time.time()), "data": data}
    if entry is not None and entry.spec.generate and entry.spec.generate.reports_details:
        body.update(
            background=background,
            output_format=output_format,
            quality=reported_quality(entry, quality),
            size=size,
        )
    if usage is not None:
        body["usage"] = usage_body(usage)
    return body


def reported_quality(entry: CatalogEntry, quality: str) -> str:
    spec = entry.spec.generate
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
        "quality": reported_quality(prepared.entry, request.quality),
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
