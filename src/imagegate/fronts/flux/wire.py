"""The Flux (Black Forest Labs) request body and its translation to the common parameters."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from imagegate.core.catalog import CatalogEntry
from imagegate.core.params import GenerationParams, ImageSource
from imagegate.core.requests import OPERATION_FEATURES
from imagegate.fronts.common.sizes import parse_ratio, size_for_pixels, size_for_ratio

FLUX_MULTIPLE = 32
DEFAULT_SIDE = 1024
DEFAULT_FORMAT = "jpeg"
MODEL_EXTRAS = ("steps", "guidance", "prompt_upsampling", "safety_tolerance", "interval", "raw")
"""Flux fields passed on as model-specific parameters (dropped and reported where undeclared)."""


class FluxBody(BaseModel):
    """``POST /flux/v1/{model}``; unknown fields are passed on like the model-specific ones."""

    model_config = ConfigDict(extra="allow", strict=True)

    prompt: str
    image_prompt: str | None = None
    input_image: str | None = None
    width: int | None = Field(default=None, ge=FLUX_MULTIPLE, multiple_of=FLUX_MULTIPLE)
    height: int | None = Field(default=None, ge=FLUX_MULTIPLE, multiple_of=FLUX_MULTIPLE)
    aspect_ratio: str | None = None
    steps: int | None = Field(default=None, ge=1, le=50)
    guidance: float | None = Field(default=None, ge=1.5, le=10)
    seed: int | None = Field(default=None, ge=0, le=4294967295)
    prompt_upsampling: bool | None = None
    safety_tolerance: int | None = Field(default=None, ge=0, le=6)
    interval: float | None = Field(default=None, ge=1, le=4)
    raw: bool | None = None
    output_format: Literal["jpeg", "png"] | None = None
    webhook_url: str | None = Field(default=None, max_length=2048)
    webhook_secret: str | None = Field(default=None, max_length=256)


def flux_params(
    body: FluxBody, entry: CatalogEntry, seed: int | None, adjusted: list[str] | None = None
) -> tuple[GenerationParams, list[str]]:
    """The common parameters for ``body`` on ``entry``, and the Flux fields the model cannot
    take (the rest of what it cannot take is reported by validation). With ``adjusted``, a
    width×height a preset-only model lacks becomes its nearest preset, noted there."""
    dropped: list[str] = []
    images: list[ImageSource] = []
    if body.input_image is not None:
        images.append(ImageSource("input_image", body.input_image))
    if body.image_prompt is not None:
        if OPERATION_FEATURES["edit"] in entry.spec.features:
            images.append(ImageSource("image_prompt", body.image_prompt))
        else:
            dropped.append("image_prompt")
    size = _size(body, entry, adjusted)
    if body.aspect_ratio is not None and (body.width or body.height):
        dropped.append("aspect_ratio")  # explicit pixels win, as on the Flux API
    output_format = _output_format(body, entry, dropped)
    extras: dict[str, Any] = {
        name: value for name in MODEL_EXTRAS if (value := getattr(body, name)) is not None
    }
    extras.update(body.model_extra or {})
    if seed is not None:
        extras["seed"] = seed
    elif body.seed is not None:
        dropped.append("seed")
    params = GenerationParams(
        prompt=body.prompt,
        operation="edit" if images else "generate",
        model=entry.spec.id,
        size=size,
        output_format=output_format,
        extras=extras,
        images=images,
    )
    if body.webhook_secret is not None and body.webhook_url is None:
        dropped.append("webhook_secret")
    return params, dropped


def _output_format(body: FluxBody, entry: CatalogEntry, dropped: list[str]) -> str | None:
    """Flux answers JPEG unless asked otherwise; a format the model lacks is dropped."""
    offered = entry.spec.generate.output_formats if entry.spec.generate else []
    wanted = body.output_format or DEFAULT_FORMAT
    if wanted in offered:
        return wanted
    if body.output_format is not None:
        dropped.append("output_format")
    return None


def _size(body: FluxBody, entry: CatalogEntry, adjusted: list[str] | None) -> str | None:
    if body.width is not None or body.height is not None:
        return size_for_pixels(
            entry, body.width, body.height, default=DEFAULT_SIDE, adjusted=adjusted
        )
    if body.aspect_ratio is not None:
        width, height = parse_ratio(body.aspect_ratio, param="aspect_ratio")
        return size_for_ratio(entry, width, height)
    return None
