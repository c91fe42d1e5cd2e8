"""Validate a client's generation parameters against the model's declared capabilities."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, cast

from imagegate.core.catalog import CatalogEntry, GenerateSpec, InputSpec, ParamSpec
from imagegate.core.requests import (
    OPERATION_FEATURES,
    Background,
    ImageRequest,
    Operation,
    OutputFormat,
)
from imagegate.digits import is_decimal
from imagegate.errors import InvalidRequest


@dataclass(frozen=True, slots=True)
class FileRef:
    """An image given by the id of a file the caller uploaded."""

    file_id: str


@dataclass(frozen=True, slots=True)
class ImageSource:
    """One input image as the client gave it, and the client field that names it in errors.

    ``value`` is uploaded bytes, a data URI or raw base64, an http(s) URL, or a :class:`FileRef`.
    """

    param: str
    value: bytes | str | FileRef


@dataclass(slots=True)
class GenerationParams:
    """Wire-neutral parameters as a client sent them (types checked, values not)."""

    prompt: str
    operation: Operation = "generate"
    model: str | None = None
    n: int = 1
    size: str | None = None
    quality: str | None = None
    response_format: str | None = None
    output_format: str | None = None
    output_compression: int | None = None
    background: str | None = None
    style: str | None = None
    moderation: str | None = None
    user: str | None = None
    stream: bool = False
    partial_images: int | None = None
    extras: dict[str, Any] = field(default_factory=dict)
    images: list[ImageSource] = field(default_factory=list)
    mask: ImageSource | None = None
    input_fidelity: str | None = None
    scale: float | None = None
    padding: tuple[int, int, int, int] | None = None
    strength: float | None = None


@dataclass(frozen=True, slots=True)
class ValidatedGeneration:
    request: ImageRequest
    response_format: str
    stream: bool
    ignored: tuple[str, ...]


_PROMPT_REQUIRED = frozenset({"generate", "edit", "replace_background"})
MAX_PADDING = 8192


def input_spec(entry: CatalogEntry, operation: Operation) -> InputSpec | None:
    """The model's input limits for ``operation`` (``None`` for generate); 400 if it can't.

    A model can do an operation when it declares the operation's feature; the editing tools
    take the model's edit limits."""
    spec = entry.spec
    feature = OPERATION_FEATURES[operation]
    if spec.generate is None or feature not in spec.features:
        raise InvalidRequest(
            f"model {spec.id!r} does not support {operation.replace('_', ' ')} "
            f"(it has no {feature!r} feature)",
            param="model",
            code="unsupported_operation",
        )
    if operation == "generate":
        return None
    if operation == "variation":
        return spec.variation or InputSpec()
    return spec.edit or InputSpec()


def check_input_counts(spec: InputSpec, params: GenerationParams) -> list[str]:
    """Refuse too few or too many images; returns the fields the model ignores."""
    count = len(params.images)
    if count == 0:
        raise InvalidRequest("image is required", param="image")
    if count > spec.max_images:
        raise InvalidRequest(
            f"{count} images were sent; this model takes at most {spec.max_images}",
            param="image",
        )
    if params.mask is not None and not spec.mask:
        raise InvalidRequest("this model does not take a mask", param="mask")
    return ["input_fidelity"] if params.input_fidelity and not spec.input_fidelity else []


def validate_generation(entry: CatalogEntry, params: GenerationParams) -> ValidatedGeneration:
    """The domain request for ``params`` on this model; :class:`InvalidRequest` names the param.

    Input images are not loaded here; the caller adds them to the request once checked."""
    spec = entry.spec.generate
    if spec is None:
        raise InvalidRequest(
            f"model {entry.spec.id!r} does not generate images from text", param="model"
        )
    ignored: list[str] = []
    prompt = _prompt(params.prompt, spec, required=params.operation in _PROMPT_REQUIRED)
    _check_tool_values(params)
    n = _n(params.n, spec, entry.spec.id)
    width, height = _size(params.size, spec, entry.spec.id)
    quality = _choice("quality", params.quality, spec.qualities, spec.default_quality)
    output_format = cast(
        OutputFormat, _choice("output_format", params.output_format, _formats(entry), "png")
    )
    background = cast(
        Background, _choice("background", params.background, spec.backgrounds, "auto")
    )
    if background == "transparent" and output_format == "jpeg":
        raise InvalidRequest(
            "background 'transparent' needs output_format 'png' or 'webp'", param="background"
        )
    compression = params.output_compression
    if compression is not None and output_format == "png":
        ignored.append("output_compression")
        compression = None
    style = params.style
    if style is not None and not spec.styles:
        ignored.append("style")
        style = None
    elif style is not None:
        style = _choice("style", style, spec.styles, None)
    response_format = _choice(
        "response_format", params.response_format, ["url", "b64_json"], spec.default_response_format
    )
    if params.stream and not spec.streaming:
        raise InvalidRequest(f"model {entry.spec.id!r} does not support streaming", param="stream")
    extras, unknown = _extras(params.extras, spec.extras)
    ignored.extend(unknown)
    fidelity = _choice("input_fidelity", params.input_fidelity, ["high", "low"], "low")
    request = ImageRequest(
        operation=params.operation,
        model=entry.spec.id,
        prompt=prompt,
        n=n,
        width=width,
        height=height,
        quality=quality,
        output_format=output_format,
        background=background,
        output_compression=compression,
        style=style,
        moderation=params.moderation,
        user=params.user,
        partial_images=params.partial_images or 0,
        extras=extras,
        input_fidelity=fidelity if params.input_fidelity else None,
        scale=params.scale,
        padding=params.padding,
        strength=params.strength,
    )
    return ValidatedGeneration(request, response_format, params.stream, tuple(sorted(ignored)))


def _check_tool_values(params: GenerationParams) -> None:
    if params.scale is not None and not 1 < params.scale <= 8:
        raise InvalidRequest("scale must be above 1 and at most 8", param="scale")
    if params.strength is not None and not 0 <= params.strength <= 1:
        raise InvalidRequest("strength must be between 0 and 1", param="strength")
    if params.padding is not None and not all(0 <= p <= MAX_PADDING for p in params.padding):
        raise InvalidRequest(f"padding must be between 0 and {MAX_PADDING} pixels", param="padding")


def _prompt(prompt: str, spec: GenerateSpec, *, required: bool) -> str:
    if required and not prompt.strip():
        raise InvalidRequest("prompt must not be empty", param="prompt")
    if len(prompt) > spec.prompt_max_chars:
        raise InvalidRequest(
            f"prompt is {len(prompt)} characters; this model takes at most {spec.prompt_max_chars}",
            param="prompt",
        )
    return prompt


def _n(n: int, spec: GenerateSpec, model_id: str) -> int:
    if n < 1 or n > spec.max_n:
        raise InvalidRequest(
            f"n must be between 1 and {spec.max_n} for model {model_id!r}; got {n}", param="n"
        )
    return n


def fit_size(spec: GenerateSpec, width: int, height: int) -> tuple[int, int]:
    """The declared size whose aspect ratio is closest to ``width``×``height`` (for ``auto``)."""
    declared = [_parse_size(size) for size in spec.sizes if size != "auto"]
    aspect, area = width / height, width * height
    return min(declared, key=lambda wh: (abs(wh[0] / wh[1] - aspect), abs(wh[0] * wh[1] - area)))


def size_is_auto(size: str | None) -> bool:
    return size in (None, "auto")


def _parse_size(size: str) -> tuple[int, int]:
    width, _, height = size.partition("x")
    return int(width), int(height)


def _formats(entry: CatalogEntry) -> list[str]:
    """The model's output formats; a ``vector`` model also draws SVG."""
    spec = entry.spec
    formats: list[str] = list(spec.generate.output_formats) if spec.generate else []
    return [*formats, "svg"] if "vector" in spec.features else formats


def _in_range(size: str, spec: GenerateSpec) -> bool:
    width, _, height = size.partition("x")
    if spec.size_range is None or not (is_decimal(width) and is_decimal(height)):
        return False
    return spec.size_range.allows(int(width), int(height))


def _size(size: str | None, spec: GenerateSpec, model_id: str) -> tuple[int, int]:
    if size is None or (size == "auto" and "auto" in spec.sizes):
        size = spec.default_size
    elif size == "auto" or (size not in spec.sizes and not _in_range(size, spec)):
        free = spec.size_range
        also = (
            f" or any WxH with sides {free.min_side}-{free.max_side} in steps of {free.multiple}"
            if free
            else ""
        )
        raise InvalidRequest(
            f"size {size!r} is not supported by model {model_id!r}; "
            f"use one of {', '.join(spec.sizes)}{also}",
            param="size",
        )
    return _parse_size(size)


def _choice(param: str, value: str | None, allowed: list[Any], default: str | None) -> str:
    if value is None:
        if default is None:
            raise InvalidRequest(f"{param} is required", param=param)
        return default
    if value not in allowed:
        raise InvalidRequest(
            f"{param} {value!r} is not supported; use one of {', '.join(map(str, allowed))}",
            param=param,
        )
    return value


def _extras(
    given: dict[str, Any], declared: dict[str, ParamSpec]
) -> tuple[dict[str, object], list[str]]:
    accepted: dict[str, object] = {}
    unknown: list[str] = []
    for name, value in given.items():
        spec = declared.get(name)
        if spec is None:
            unknown.append(name)
            continue
        _check_extra(name, value, spec)
        accepted[name] = value
    return accepted, unknown


_JSON_TYPES: dict[str, tuple[type, ...]] = {
    "integer": (int,),
    "number": (int, float),
    "string": (str,),
    "boolean": (bool,),
    "array": (list,),
}


def _check_extra(name: str, value: Any, spec: ParamSpec) -> None:
    is_bool = isinstance(value, bool)
    if not isinstance(value, _JSON_TYPES[spec.type]) or (is_bool and spec.type != "boolean"):
        raise InvalidRequest(f"{name} must be of type {spec.type}", param=name)
    if spec.type in ("integer", "number"):
        _check_range(name, float(cast(float, value)), spec)
    if spec.enum is not None and value not in spec.enum:
        raise InvalidRequest(f"{name} must be one of {', '.join(spec.enum)}", param=name)


def _check_range(name: str, value: float, spec: ParamSpec) -> None:
    if spec.minimum is not None and value < spec.minimum:
        raise InvalidRequest(f"{name} must be at least {spec.minimum:g}", param=name)
    if spec.maximum is not None and value > spec.maximum:
        raise InvalidRequest(f"{name} must be at most {spec.maximum:g}", param=name)
