"""Render domain deliveries as Gemini responses: GenerateContentResponse bodies, their SSE
chunks, Imagen predictions, safety blocks and model records."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import orjson

from imagegate.core.catalog import CatalogEntry
from imagegate.core.generation import Delivery, Prepared
from imagegate.core.requests import GeneratedImage, Usage
from imagegate.errors import ContentPolicyViolation, ImagegateError, ServerError
from imagegate.fronts.gemini.errors import gemini_error_body

FALLBACK_TEXT = "Here is the image."
GENERATION_METHODS = ["generateContent", "streamGenerateContent", "predict"]
OUTPUT_TOKEN_LIMIT = 32768
"""What Google states for its image models; the gateway itself imposes no output limit."""

_BLOCK_REASONS = frozenset({"SAFETY", "OTHER", "BLOCKLIST", "PROHIBITED_CONTENT", "IMAGE_SAFETY"})
_FINISH_REASONS = frozenset(
    {"SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "IMAGE_SAFETY", "OTHER"}
    | {"IMAGE_PROHIBITED_CONTENT", "IMAGE_RECITATION", "IMAGE_OTHER", "NO_IMAGE"}
)


def content_response(delivery: Delivery, *, with_text: bool) -> dict[str, Any]:
    """The ``generateContent`` body: one candidate per image, text first when asked for."""
    candidates = [
        {
            "content": {"role": "model", "parts": _parts(delivery, image, with_text=with_text)},
            "finishReason": "STOP",
            "index": index,
        }
        for index, image in enumerate(delivery.result.images)
    ]
    return _envelope(delivery.prepared, {"candidates": candidates}, delivery.result.usage)


def content_chunks(delivery: Delivery, *, with_text: bool) -> list[dict[str, Any]]:
    """The same answer as stream chunks: per candidate its text, then its image; the last chunk
    of a candidate carries its ``finishReason`` and the very last one the usage."""
    prepared, chunks = delivery.prepared, []
    for index, image in enumerate(delivery.result.images):
        if with_text:
            text = [{"text": delivery.result.text or FALLBACK_TEXT}]
            chunks.append(_envelope(prepared, {"candidates": [_candidate(index, text)]}, None))
        finished = {**_candidate(index, [_image_part(image)]), "finishReason": "STOP"}
        chunks.append(_envelope(prepared, {"candidates": [finished]}, None))
    if chunks and delivery.result.usage is not None:
        chunks[-1]["usageMetadata"] = usage_metadata(delivery.result.usage)
    return chunks


def blocked_response(error: ContentPolicyViolation, prepared: Prepared) -> dict[str, Any]:
    """A safety block as Google reports it: ``promptFeedback.blockReason`` with no candidates
    for a refused prompt, else a candidate with no content and a safety ``finishReason``."""
    if error.stage == "prompt":
        reason = error.reason if error.reason in _BLOCK_REASONS else "OTHER"
        return _envelope(prepared, {"promptFeedback": {"blockReason": reason}}, None)
    reason = error.reason if error.reason in _FINISH_REASONS else "IMAGE_SAFETY"
    candidate = {"finishReason": reason, "finishMessage": error.message, "index": 0}
    return _envelope(prepared, {"candidates": [candidate]}, None)


async def sse_chunks(
    run: Callable[[], Awaitable[Delivery]], prepared: Prepared, *, with_text: bool
) -> AsyncIterator[bytes]:
    """``data: <GenerateContentResponse>`` events of ``run()``'s delivery; a failure becomes one
    error event (the HTTP status is already sent) and a safety block one blocked response."""
    try:
        chunks = content_chunks(await run(), with_text=with_text)
    except ContentPolicyViolation as exc:
        chunks = [blocked_response(exc, prepared)]
    except Exception as exc:
        error = exc if isinstance(exc, ImagegateError) else ServerError("internal error")
        chunks = [gemini_error_body(error, prepared.request_id)]
    for chunk in chunks:
        yield b"data: " + orjson.dumps(chunk) + b"\r\n\r\n"


def predict_response(delivery: Delivery) -> dict[str, Any]:
    """Imagen's ``{"predictions": [{"bytesBase64Encoded", "mimeType"}]}``."""
    predictions = []
    for image in delivery.result.images:
        item = {"bytesBase64Encoded": image.base64(), "mimeType": image.mime_type}
        if image.revised_prompt:
            item["prompt"] = image.revised_prompt
        predictions.append(item)
    return {"predictions": predictions}


def filtered_predictions(error: ContentPolicyViolation) -> dict[str, Any]:
    """Images withheld for safety, as Imagen reports them."""
    return {"predictions": [{"raiFilteredReason": error.message}]}


def usage_metadata(usage: Usage) -> dict[str, Any]:
    """Token counts in Google's shape, with the per-modality breakdown it gives."""
    return {
        "promptTokenCount": usage.input_tokens,
        "candidatesTokenCount": usage.output_tokens,
        "totalTokenCount": usage.total_tokens,
        "promptTokensDetails": _by_modality(usage.input_text_tokens, usage.input_image_tokens),
        "candidatesTokensDetails": _by_modality(
            usage.output_text_tokens, usage.output_image_tokens
        ),
    }


def model_record(entry: CatalogEntry) -> dict[str, Any]:
    """A catalogue entry in the shape of Google's ``Model``."""
    spec = entry.spec
    return {
        "name": f"models/{spec.id}",
        "baseModelId": spec.id,
        "version": time.strftime("%Y-%m-%d", time.gmtime(spec.created)),
        "displayName": spec.name,
        "description": spec.description,
        "inputTokenLimit": spec.generate.prompt_max_chars if spec.generate else 0,
        "outputTokenLimit": OUTPUT_TOKEN_LIMIT,
        "supportedGenerationMethods": GENERATION_METHODS if spec.generate else [],
    }


def _envelope(prepared: Prepared, body: dict[str, Any], usage: Usage | None) -> dict[str, Any]:
    if usage is not None:
        body["usageMetadata"] = usage_metadata(usage)
    body["modelVersion"] = prepared.entry.spec.id
    body["responseId"] = prepared.request_id
    return body


def _candidate(index: int, parts: list[dict[str, Any]]) -> dict[str, Any]:
    return {"content": {"role": "model", "parts": parts}, "index": index}


def _parts(delivery: Delivery, image: GeneratedImage, *, with_text: bool) -> list[dict[str, Any]]:
    text = [{"text": delivery.result.text or FALLBACK_TEXT}] if with_text else []
    return [*text, _image_part(image)]


def _image_part(image: GeneratedImage) -> dict[str, Any]:
    return {"inlineData": {"mimeType": image.mime_type, "data": image.base64()}}


def _by_modality(text: int, image: int) -> list[dict[str, Any]]:
    counts = [("TEXT", text), ("IMAGE", image)]
    return [{"modality": modality, "tokenCount": count} for modality, count in counts if count]
