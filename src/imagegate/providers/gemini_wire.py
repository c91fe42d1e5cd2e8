"""Google's Generative Language API as an upstream: ``generateContent`` (Gemini image models) and
``predict`` (Imagen) bodies, response models, usage, safety outcomes and the error envelope.

Boundary: no HTTP here (that is :mod:`imagegate.providers.gemini`). Models accept Google's
camelCase and snake_case keys, as the API itself does. Thought parts (``"thought": true``:
interim drafts of thinking models) are never taken as results.
"""

from __future__ import annotations

from typing import Any, Final

import pybase64
from pydantic import AliasChoices, BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from imagegate.core.requests import ImageRequest, Usage
from imagegate.errors import ContentPolicyViolation
from imagegate.providers._common import nearest_aspect_ratio

GEMINI_ASPECT_RATIOS: Final = (
    "1:1", "2:3", "3:2", "3:4", "4:3", "4:5", "5:4", "9:16", "16:9", "21:9",
)  # fmt: skip
IMAGEN_ASPECT_RATIOS: Final = ("1:1", "3:4", "4:3", "9:16", "16:9")
SAFETY_FINISH: Final = frozenset(
    {
        "SAFETY",
        "IMAGE_SAFETY",
        "PROHIBITED_CONTENT",
        "IMAGE_PROHIBITED_CONTENT",
        "BLOCKLIST",
        "SPII",
        "RECITATION",
        "IMAGE_RECITATION",
        "MODEL_ARMOR",
    }
)
_SIZE_CLASSES: Final = (("4K", 4096), ("2K", 2048), ("1K", 1024))


class _Google(BaseModel):
    model_config = ConfigDict(extra="ignore", alias_generator=to_camel, populate_by_name=True)


class Blob(_Google):
    mime_type: str = "application/octet-stream"
    data: str = ""


class Part(_Google):
    text: str | None = None
    inline_data: Blob | None = None
    thought: bool | None = None


class Content(_Google):
    role: str | None = None
    parts: list[Part] = []


class Candidate(_Google):
    content: Content | None = None
    finish_reason: str | None = None
    index: int | None = None


class PromptFeedback(_Google):
    block_reason: str | None = None


class ModalityCount(_Google):
    modality: str = ""
    token_count: int = 0


class UsageMetadata(_Google):
    prompt_token_count: int = 0
    candidates_token_count: int = 0
    thoughts_token_count: int = 0
    total_token_count: int = 0
    prompt_tokens_details: list[ModalityCount] = []
    candidates_tokens_details: list[ModalityCount] = []

    def domain(self) -> Usage:
        prompt = _by_modality(self.prompt_tokens_details)
        output = _by_modality(self.candidates_tokens_details)
        image_in = prompt.get("IMAGE", 0)
        image_out = output.get("IMAGE", self.candidates_token_count if not output else 0)
        text_out = output.get("TEXT", 0) + self.thoughts_token_count
        return Usage(
            input_text_tokens=prompt.get("TEXT", self.prompt_token_count - image_in),
            input_image_tokens=image_in,
            output_image_tokens=image_out,
            output_text_tokens=text_out,
        )


def _by_modality(counts: list[ModalityCount]) -> dict[str, int]:
    found: dict[str, int] = {}
    for count in counts:
        found[count.modality] = found.get(count.modality, 0) + count.token_count
    return found


class GenerateContentResponse(_Google):
    candidates: list[Candidate] = []
    prompt_feedback: PromptFeedback | None = None
    usage_metadata: UsageMetadata | None = None
    model_version: str | None = None


class Prediction(_Google):
    bytes_base64_encoded: str | None = None
    mime_type: str | None = None
    rai_filtered_reason: str | None = None


class PredictResponse(_Google):
    predictions: list[Prediction] = []


class ErrorDetail(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    type: str = Field(default="", validation_alias=AliasChoices("@type", "type"))
    retry_delay: str | None = Field(default=None, validation_alias=AliasChoices("retryDelay"))
    reason: str | None = None


class GoogleError(BaseModel):
    model_config = ConfigDict(extra="ignore")

    code: int | None = None
    message: str = ""
    status: str | None = None
    details: list[ErrorDetail] = []

    def retry_delay(self) -> str | None:
        for detail in self.details:
            if detail.type.endswith("google.rpc.RetryInfo") and detail.retry_delay:
                return detail.retry_delay
        return None

    def reasons(self) -> set[str]:
        return {detail.reason for detail in self.details if detail.reason}


class GoogleErrorEnvelope(BaseModel):
    model_config = ConfigDict(extra="ignore")

    error: GoogleError


def aspect_ratio(width: int, height: int, choices: tuple[str, ...] | list[str]) -> str:
    """The listed aspect ratio nearest ``width``×``height``."""
    return nearest_aspect_ratio(width, height, choices)


def size_class(width: int, height: int, offered: list[str]) -> str | None:
    """``"1K"``/``"2K"``/``"4K"`` for the longer side, if the deployment offers size classes."""
    if not offered:
        return None
    longest = max(width, height)
    for name, side in _SIZE_CLASSES:
        if longest >= side * 0.75 and name in offered:
            return name
    return offered[0] if "1K" not in offered else "1K"


def _inline(data: bytes, mime_type: str) -> dict[str, Any]:
    return {"inlineData": {"mimeType": mime_type, "data": pybase64.b64encode(data).decode()}}


def content_body(request: ImageRequest, ratios: list[str], sizes: list[str]) -> dict[str, Any]:
    """The ``generateContent`` body: the prompt, then every input image inline."""
    parts: list[dict[str, Any]] = [{"text": request.prompt}] if request.prompt else []
    parts.extend(_inline(image.data, image.mime_type) for image in request.images)
    image_config: dict[str, Any] = {
        "aspectRatio": aspect_ratio(request.width, request.height, ratios)
    }
    image_size = size_class(request.width, request.height, sizes)
    if image_size is not None:
        image_config["imageSize"] = image_size
    config: dict[str, Any] = {"responseModalities": ["TEXT", "IMAGE"], "imageConfig": image_config}
    seed = request.extras.get("seed")
    if isinstance(seed, int) and not isinstance(seed, bool):
        config["seed"] = seed
    return {"contents": [{"role": "user", "parts": parts}], "generationConfig": config}


def predict_body(
    request: ImageRequest, ratios: list[str], sizes: list[str], person_generation: str | None
) -> dict[str, Any]:
    """The Imagen ``predict`` body (``sampleCount`` = ``n``; PNG or JPEG out)."""
    parameters: dict[str, Any] = {
        "sampleCount": request.n,
        "aspectRatio": aspect_ratio(request.width, request.height, ratios),
        "includeRaiReason": True,
    }
    image_size = size_class(request.width, request.height, sizes)
    if image_size is not None:
        parameters["sampleImageSize"] = image_size
    if request.output_format == "jpeg":
        options: dict[str, Any] = {"mimeType": "image/jpeg"}
        if request.output_compression is not None:
            options["compressionQuality"] = max(1, 100 - request.output_compression)
        parameters["outputOptions"] = options
    else:
        parameters["outputOptions"] = {"mimeType": "image/png"}
    if person_generation:
        parameters["personGeneration"] = person_generation
    negative = request.extras.get("negative_prompt")
    if isinstance(negative, str) and negative:
        parameters["negativePrompt"] = negative
    return {"instances": [{"prompt": request.prompt}], "parameters": parameters}


def blocked(response: GenerateContentResponse) -> ContentPolicyViolation | None:
    """The safety outcome of an answer that holds no image, if that is why."""
    feedback = response.prompt_feedback
    if not response.candidates and feedback is not None and feedback.block_reason:
        return ContentPolicyViolation(
            f"the prompt was blocked by the upstream's safety filters ({feedback.block_reason})",
            stage="prompt",
            reason=feedback.block_reason,
        )
    for candidate in response.candidates:
        if candidate.finish_reason in SAFETY_FINISH:
            return ContentPolicyViolation(
                f"the upstream withheld the image for safety reasons ({candidate.finish_reason})",
                stage="output",
                reason=candidate.finish_reason,
            )
    return None
