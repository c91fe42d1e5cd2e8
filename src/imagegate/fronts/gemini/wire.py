"""Gemini request bodies (``generateContent`` and Imagen's ``predict``) and what they ask for.

Google's JSON accepts every key in camelCase and in snake_case, so these models do too. Field
types are checked strictly; fields Google defines that an image model has no use for (sampling
settings, tools, safety settings) are accepted and reported as ignored.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic.alias_generators import to_camel

from imagegate.core.catalog import GenerateSpec
from imagegate.core.params import FileRef, ImageSource, fit_size
from imagegate.errors import InvalidRequest
from imagegate.fronts.common.sizes import range_size

AspectRatio = Literal["1:1", "2:3", "3:2", "3:4", "4:3", "4:5", "5:4", "9:16", "16:9", "21:9"]
ImageSize = Literal["1K", "2K", "4K"]
MAX_INPUT_IMAGES = 14
OUTPUT_FORMATS = {"image/png": "png", "image/jpeg": "jpeg", "image/webp": "webp"}

_SCHEME = re.compile(r"\s*([A-Za-z][A-Za-z0-9+.\-]*):")
_SIDES: dict[str, int] = {"1K": 1024, "2K": 2048, "4K": 4096}
_UNUSED_REQUEST_FIELDS = (
    "system_instruction",
    "safety_settings",
    "tools",
    "tool_config",
    "cached_content",
    "labels",
    "service_tier",
)


class _Wire(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, strict=True, extra="forbid"
    )


class Blob(_Wire):
    """``inlineData``: base64 bytes and their MIME type."""

    mime_type: str
    data: str
    display_name: str | None = None


class FileData(_Wire):
    """``fileData``: an http(s) URL (or an imagegate file id) and its MIME type."""

    file_uri: str
    mime_type: str | None = None
    display_name: str | None = None


class Part(_Wire):
    """One part of a turn. Kinds an image model cannot use (function calls, code, …) are
    accepted and skipped."""

    model_config = ConfigDict(extra="allow")

    text: str | None = None
    inline_data: Blob | None = None
    file_data: FileData | None = None
    thought: bool | None = None
    thought_signature: str | None = None

    @model_validator(mode="after")
    def _one_kind_of_data(self) -> Part:
        kinds = [self.text, self.inline_data, self.file_data]
        if sum(kind is not None for kind in kinds) > 1:
            raise ValueError("a part holds one of text, inlineData and fileData, not several")
        return self


class Content(_Wire):
    """One turn of the conversation."""

    role: Literal["user", "model"] | None = None
    parts: list[Part] = Field(min_length=1)


class ImageConfig(_Wire):
    """``generationConfig.imageConfig``."""

    model_config = ConfigDict(extra="allow")

    aspect_ratio: AspectRatio | None = None
    image_size: ImageSize | None = None
    output_mime_type: Literal["image/png", "image/jpeg", "image/webp"] | None = None
    output_compression_quality: int | None = Field(default=None, ge=0, le=100)


class GenerationConfig(_Wire):
    """``generationConfig``; sampling fields (temperature, topP, …) are accepted and ignored."""

    model_config = ConfigDict(extra="allow")

    response_modalities: list[Literal["TEXT", "IMAGE"]] | None = None
    candidate_count: int | None = Field(default=None, ge=1)
    seed: int | None = None
    image_config: ImageConfig | None = None


class GenerateContentRequest(_Wire):
    """``POST /v1beta/models/{model}:generateContent`` (and ``:streamGenerateContent``)."""

    contents: list[Content] = Field(min_length=1)
    generation_config: GenerationConfig | None = None
    system_instruction: Content | None = None
    safety_settings: list[Any] | None = None
    tools: list[Any] | None = None
    tool_config: dict[str, Any] | None = None
    cached_content: str | None = None
    labels: dict[str, str] | None = None
    service_tier: str | None = None
    model: str | None = None


class PredictInstance(_Wire):
    """One Imagen instance: the prompt (other instance fields are ignored)."""

    model_config = ConfigDict(extra="allow")

    prompt: str


class OutputOptions(_Wire):
    """Imagen's ``parameters.outputOptions``."""

    mime_type: Literal["image/png", "image/jpeg"] | None = None
    compression_quality: int | None = Field(default=None, ge=0, le=100)


class PredictParameters(_Wire):
    """Imagen's ``parameters``; others it defines (personGeneration, …) are accepted and ignored."""

    model_config = ConfigDict(extra="allow")

    sample_count: int | None = Field(default=None, ge=1)
    aspect_ratio: AspectRatio | None = None
    sample_image_size: ImageSize | None = None
    negative_prompt: str | None = None
    seed: int | None = None
    output_options: OutputOptions | None = None


class PredictRequest(_Wire):
    """``POST /v1beta/models/{model}:predict`` (Imagen)."""

    instances: list[PredictInstance] = Field(min_length=1, max_length=1)
    parameters: PredictParameters = PredictParameters()
    labels: dict[str, str] | None = None


@dataclass(slots=True)
class ContentAsk:
    """What a ``generateContent`` body asks of an image model, in the gateway's terms."""

    prompt: str
    images: list[ImageSource]
    with_text: bool
    n: int | None
    aspect_ratio: str | None
    image_size: str | None
    output_format: str | None
    output_compression: int | None
    extras: dict[str, object] = field(default_factory=dict)
    ignored: list[str] = field(default_factory=list)


def content_ask(body: GenerateContentRequest) -> ContentAsk:
    """Prompt, input images and output settings of a ``generateContent`` body.

    The prompt is the text of the last user turn and its images (at most 14) are the edit's
    inputs. When that turn has no image, the most recent image of an earlier turn (the model's
    last answer, sent back) is edited: that is how Gemini's multi-turn editing works.
    """
    config = body.generation_config or GenerationConfig()
    image = config.image_config or ImageConfig()
    prompt, images = _turns(body.contents)
    return ContentAsk(
        prompt=prompt,
        images=images,
        with_text=_wants_text(config.response_modalities),
        n=config.candidate_count or 1,
        aspect_ratio=image.aspect_ratio,
        image_size=image.image_size,
        output_format=OUTPUT_FORMATS[image.output_mime_type] if image.output_mime_type else None,
        output_compression=image.output_compression_quality,
        extras={} if config.seed is None else {"seed": config.seed},
        ignored=_ignored(body, config, image),
    )


def predict_ask(body: PredictRequest) -> ContentAsk:
    """What an Imagen ``predict`` body asks for; ``n`` is None when ``sampleCount`` is absent."""
    instance, parameters = body.instances[0], body.parameters
    options = parameters.output_options or OutputOptions()
    extras: dict[str, object] = {}
    if parameters.seed is not None:
        extras["seed"] = parameters.seed
    if parameters.negative_prompt is not None:
        extras["negative_prompt"] = parameters.negative_prompt
    ignored = [f"instances[0].{name}" for name in instance.model_extra or {}]
    ignored += [f"parameters.{name}" for name in parameters.model_extra or {}]
    ignored += ["labels"] if body.labels is not None else []
    return ContentAsk(
        prompt=instance.prompt,
        images=[],
        with_text=False,
        n=parameters.sample_count,
        aspect_ratio=parameters.aspect_ratio,
        image_size=parameters.sample_image_size,
        output_format=OUTPUT_FORMATS[options.mime_type] if options.mime_type else None,
        output_compression=options.compression_quality,
        extras=extras,
        ignored=ignored,
    )


def _wants_text(modalities: list[Literal["TEXT", "IMAGE"]] | None) -> bool:
    if not modalities:
        return True
    if "IMAGE" not in modalities:
        raise InvalidRequest(
            "this is an image model: generationConfig.responseModalities must include IMAGE",
            param="generationConfig.responseModalities",
        )
    return "TEXT" in modalities


def _ignored(
    body: GenerateContentRequest, config: GenerationConfig, image: ImageConfig
) -> list[str]:
    unused = [to_camel(name) for name in _UNUSED_REQUEST_FIELDS if getattr(body, name) is not None]
    unused += [f"generationConfig.{name}" for name in config.model_extra or {}]
    unused += [f"generationConfig.imageConfig.{name}" for name in image.model_extra or {}]
    return unused


def _turns(contents: list[Content]) -> tuple[str, list[ImageSource]]:
    last = next((i for i in range(len(contents) - 1, -1, -1) if contents[i].role != "model"), None)
    if last is None:
        raise InvalidRequest("contents must include a user turn", param="contents")
    sources = [_sources(i, content) for i, content in enumerate(contents)]
    images = sources[last]
    if len(images) > MAX_INPUT_IMAGES:
        extra = images[MAX_INPUT_IMAGES]
        raise InvalidRequest(
            f"{len(images)} images were sent; at most {MAX_INPUT_IMAGES} are accepted "
            f"({extra.param} is one too many)",
            param=extra.param,
        )
    if not images:
        earlier = [source for turn in sources[:last] for source in turn]
        images = earlier[-1:]
    prompt = "\n".join(part.text for part in contents[last].parts if part.text and not part.thought)
    return prompt, images


def _sources(index: int, content: Content) -> list[ImageSource]:
    sources = []
    for j, part in enumerate(content.parts):
        where = f"contents[{index}].parts[{j}]"
        if part.thought:
            continue
        if part.inline_data is not None:
            _check_image_type(part.inline_data.mime_type, f"{where}.inlineData.mimeType")
            sources.append(_inline_source(f"{where}.inlineData.data", part.inline_data.data))
        elif part.file_data is not None:
            if part.file_data.mime_type is not None:
                _check_image_type(part.file_data.mime_type, f"{where}.fileData.mimeType")
            uri = part.file_data.file_uri
            value: str | FileRef = FileRef(uri) if uri.startswith("file-") else uri
            sources.append(ImageSource(f"{where}.fileData.fileUri", value))
    return sources


def _inline_source(param: str, data: str) -> ImageSource:
    """Inline data is base64 (or a data URI); a URL here would be fetched, so it is refused."""
    scheme = _SCHEME.match(data[:64])
    if scheme is not None and scheme.group(1).lower() != "data":
        raise InvalidRequest(f"{param} must be base64; send URLs as fileData", param=param)
    return ImageSource(param, data)


def _check_image_type(mime_type: str, param: str) -> None:
    if not mime_type.lower().startswith("image/"):
        raise InvalidRequest(f"{param} is {mime_type!r}; this model takes only images", param=param)


def fitted_size(
    spec: GenerateSpec | None, aspect_ratio: str | None, image_size: str | None
) -> tuple[str | None, list[str]]:
    """The declared size nearest to an aspect ratio and a 1K/2K/4K size, and what had to change
    (``aspectRatio=21:9->1792x1024``) when the model has no exact match."""
    declared = [size for size in spec.sizes if size != "auto"] if spec else []
    if spec is None or not declared or (aspect_ratio is None and image_size is None):
        return None, []
    across, down = (int(side) for side in (aspect_ratio or "1:1").split(":"))
    ratio, side = across / down, _SIDES[image_size or "1K"]
    width, height = fit_size(spec, round(side * math.sqrt(ratio)), round(side / math.sqrt(ratio)))
    if spec.size_range is not None and abs(width / height - ratio) > 0.01 * ratio:
        # no preset has this shape, but any size on the model's grid will do
        width, height = (int(n) for n in range_size(spec.size_range, ratio, side**2).split("x"))
    size = f"{width}x{height}"
    adjusted = []
    if aspect_ratio and abs(width / height - ratio) > 0.01 * ratio:
        adjusted.append(f"aspectRatio={aspect_ratio}->{size}")
    if image_size and _size_class(width, height) != image_size:
        adjusted.append(f"imageSize={image_size}->{size}")
    return size, adjusted


def _size_class(width: int, height: int) -> str:
    scale = math.sqrt(width * height) / 1024
    return min(_SIDES, key=lambda name: abs(_SIDES[name] / 1024 - scale))
