"""The Replicate prediction request and the translation of its ``input`` to common parameters."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from imagegate.core.catalog import CatalogEntry
from imagegate.core.params import GenerationParams, ImageSource
from imagegate.errors import InvalidRequest
from imagegate.fronts.common.sizes import parse_ratio, size_for_pixels, size_for_ratio

Event = Literal["start", "output", "logs", "completed"]
EVENT_STATUSES: dict[str, tuple[str, ...]] = {
    "start": ("running",),
    "logs": ("running",),
    "output": ("succeeded",),
    "completed": ("succeeded", "failed", "canceled"),
}
"""Which task status changes each Replicate webhook event stands for."""
FORMATS = {"webp": "webp", "jpg": "jpeg", "jpeg": "jpeg", "png": "png"}
RENAMED = {"num_inference_steps": "steps", "guidance_scale": "guidance"}
"""Replicate's names for model parameters the catalogue knows under another name."""
IMAGE_KEYS = ("input_image", "input_images", "image")
_MAPPED = frozenset(
    {"prompt", "aspect_ratio", "width", "height", "num_outputs", "output_format"}
    | {"output_quality", "seed", *IMAGE_KEYS}
)
DEFAULT_SIDE = 1024


class PredictionBody(BaseModel):
    """``POST /replicate/v1/models/{owner}/{name}/predictions``."""

    model_config = ConfigDict(extra="forbid", strict=True)

    input: dict[str, Any]
    webhook: str | None = Field(default=None, max_length=2048)
    webhook_events_filter: list[Event] | None = None
    stream: bool | None = None


class VersionedBody(PredictionBody):
    """``POST /replicate/v1/predictions``: the model named by its version."""

    version: str = Field(min_length=1, max_length=300)


@dataclass(slots=True)
class Translated:
    """The common parameters, the input keys the model cannot take, and how names map back."""

    params: GenerationParams
    dropped: list[str] = field(default_factory=list)
    wire_names: dict[str, str] = field(default_factory=dict)
    adjusted: list[str] = field(default_factory=list)
    """Values changed to what the model takes (a preset-only model's nearest size)."""

    def report(self, ignored: tuple[str, ...]) -> list[str]:
        """Everything the model did not take, under the client's own input names."""
        return sorted({*self.dropped, *(self.wire_names.get(name, name) for name in ignored)})


def _typed(data: dict[str, Any], name: str, kind: type | tuple[type, ...]) -> Any:
    value = data.get(name)
    if value is not None and (not isinstance(value, kind) or isinstance(value, bool)):
        raise InvalidRequest(f"input.{name} has the wrong type", param=f"input.{name}")
    return value


def _images(data: dict[str, Any]) -> list[ImageSource]:
    sources: list[ImageSource] = []
    for name in IMAGE_KEYS:
        value = data.get(name)
        values = value if isinstance(value, list) and name == "input_images" else [value]
        for index, item in enumerate(values):
            if item is None:
                continue
            if not isinstance(item, str):
                raise InvalidRequest(f"input.{name} must be a URL", param=f"input.{name}")
            suffix = f"[{index}]" if name == "input_images" else ""
            sources.append(ImageSource(f"input.{name}{suffix}", item))
    return sources


def _size(
    data: dict[str, Any], entry: CatalogEntry, dropped: list[str], adjusted: list[str]
) -> str | None:
    """Pixels count only with ``aspect_ratio`` absent or ``custom``, as on Replicate."""
    ratio = _typed(data, "aspect_ratio", str)
    width, height = _typed(data, "width", int), _typed(data, "height", int)
    if ratio in (None, "custom"):
        return size_for_pixels(entry, width, height, default=DEFAULT_SIDE, adjusted=adjusted)
    dropped.extend(name for name, side in (("width", width), ("height", height)) if side)
    if ratio == "match_input_image":
        return None
    return size_for_ratio(entry, *parse_ratio(ratio, param="input.aspect_ratio"))


def _n(data: dict[str, Any], entry: CatalogEntry) -> int:
    count = _typed(data, "num_outputs", int)
    limit = entry.spec.generate.max_n if entry.spec.generate else 1
    if count is not None and not 1 <= count <= limit:
        raise InvalidRequest(
            f"input.num_outputs must be between 1 and {limit} for model {entry.spec.id!r}",
            param="input.num_outputs",
        )
    return count or 1


def replicate_params(data: dict[str, Any], entry: CatalogEntry, seed: int | None) -> Translated:
    """The common parameters for a prediction ``input`` on ``entry``."""
    prompt = _typed(data, "prompt", str) or ""
    images = _images(data)
    dropped: list[str] = []
    adjusted: list[str] = []
    translated = Translated(
        GenerationParams(
            prompt=prompt,
            operation="edit" if images else "generate",
            model=entry.spec.id,
            n=_n(data, entry),
            size=_size(data, entry, dropped, adjusted),
            images=images,
        ),
        dropped=dropped,
        wire_names={"output_compression": "output_quality"},
        adjusted=adjusted,
    )
    _output(data, entry, translated)
    extras = translated.params.extras
    if seed is not None:
        extras["seed"] = seed
    elif data.get("seed") is not None:
        translated.dropped.append("seed")
    for name, value in data.items():
        if name in _MAPPED or value is None:
            continue
        domain = RENAMED.get(name, name)
        translated.wire_names[domain] = name
        extras[domain] = value
    return translated


def _output(data: dict[str, Any], entry: CatalogEntry, translated: Translated) -> None:
    wanted = _typed(data, "output_format", str)
    if wanted is not None and wanted not in FORMATS:
        raise InvalidRequest(
            "input.output_format must be one of webp, jpg, png", param="input.output_format"
        )
    offered = entry.spec.generate.output_formats if entry.spec.generate else []
    if wanted is not None and FORMATS[wanted] in offered:
        translated.params.output_format = FORMATS[wanted]
    elif wanted is not None:
        translated.dropped.append("output_format")
    quality = _typed(data, "output_quality", int)
    if quality is not None and not 0 <= quality <= 100:
        raise InvalidRequest(
            "input.output_quality must be between 0 and 100", param="input.output_quality"
        )
    translated.params.output_compression = quality
