"""Bria's editing actions as domain requests: checks the action's required fields, loads the
image and mask within Bria's limits, converts the mask and ``expand``'s canvas geometry."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from imagegate.core.catalog import CatalogEntry
from imagegate.core.inputs import InputLoader
from imagegate.core.params import GenerationParams, ImageSource
from imagegate.core.requests import InputImage
from imagegate.errors import InvalidRequest
from imagegate.fronts.bria import images as pixels
from imagegate.fronts.bria.wire import (
    ACTION_FIELDS,
    IMAGE_FORMATS,
    MAX_CANVAS_SIDE,
    MAX_IMAGE_BYTES,
    Action,
    EditBody,
)
from imagegate.fronts.common.sizes import parse_ratio, size_for_output
from imagegate.imaging.budget import DECODE_BUDGET
from imagegate.imaging.limits import ImageLimits

LIMITS = ImageLimits(max_bytes=MAX_IMAGE_BYTES, formats=IMAGE_FORMATS)
DEFAULT_INCREASE = 2


@dataclass(slots=True)
class EditPlan:
    """The image (possibly re-framed), the domain mask and the outpaint geometry."""

    image: bytes
    mask: bytes | None = None
    padding: tuple[int, int, int, int] | None = None
    size: str | None = None
    dropped: list[str] = field(default_factory=list)


def check_fields(body: EditBody, action: Action) -> list[str]:
    """400 for a missing required field; returns the given fields the action does not use."""
    if action.mask == "required" and body.mask is None:
        raise InvalidRequest("mask is required for this action", param="mask")
    if action.prompt == "required" and not (body.prompt or "").strip():
        raise InvalidRequest("prompt is required for this action", param="prompt")
    expand_frame = body.aspect_ratio is not None or body.canvas_size is not None
    if action.operation == "outpaint" and body.mask is None and not expand_frame:
        raise InvalidRequest(
            "expand needs aspect_ratio, canvas_size or a mask", param="aspect_ratio"
        )
    unused = [
        name for name in sorted(ACTION_FIELDS - action.fields) if getattr(body, name) is not None
    ]
    if action.mask == "unused" and body.mask is not None:
        unused.append("mask")
    if action.prompt == "unused" and body.prompt is not None:
        unused.append("prompt")
    return unused


async def plan_edit(
    body: EditBody, action: Action, entry: CatalogEntry, loader: InputLoader, owner_key_id: str
) -> EditPlan:
    """Load the inputs and work out what the domain request needs for ``action``."""

    async def load(param: str, value: str) -> InputImage:
        source = ImageSource(param, value)
        return await loader.load(source, owner_key_id=owner_key_id, limits=LIMITS)

    image = await load("image", body.image)
    plan = EditPlan(image.data)
    mask = await load("mask", body.mask) if body.mask and action.mask != "unused" else None
    if action.operation == "outpaint":
        await _expand(body, entry, image, mask, plan)
    elif action.operation == "upscale":
        scale = body.desired_increase or DEFAULT_INCREASE
        plan.size = size_for_output(entry, image.width * scale, image.height * scale)
    elif mask is not None:
        plan.mask = await _decoding(_area(mask), pixels.alpha_mask, mask.data)
    return plan


async def _expand(
    body: EditBody,
    entry: CatalogEntry,
    image: InputImage,
    mask: InputImage | None,
    plan: EditPlan,
) -> None:
    size = (image.width, image.height)
    if body.original_image_size is not None and tuple(body.original_image_size) != size:
        size = _sides(body.original_image_size, "original_image_size")
        cost = _area(image) + size[0] * size[1]
        plan.image = await _decoding(cost, pixels.resize, image.data, size)
    if body.canvas_size is not None:
        canvas = _sides(body.canvas_size, "canvas_size")
        location = body.original_image_location
        plan.padding = pixels.padding_in_canvas(size, canvas, location)
    elif body.aspect_ratio is not None:
        canvas = pixels.canvas_for_ratio(size, _ratio(body.aspect_ratio))
        plan.padding = pixels.padding_in_canvas(size, canvas, None)
    else:
        assert mask is not None  # check_fields asked for one
        canvas = (mask.width, mask.height)
        box, mask_size = await _decoding(_area(mask), pixels.kept_box, mask.data)
        if mask_size != (image.width, image.height):
            raise InvalidRequest("mask must be the size of the image", param="mask")
        plan.image = await _decoding(_area(image), pixels.crop, image.data, box)
        plan.padding = (box[0], box[1], canvas[0] - box[2], canvas[1] - box[3])
    framed = body.canvas_size is not None or body.aspect_ratio is not None
    if framed and body.mask is not None:
        plan.dropped.append("mask")  # the frame fields say where to expand
    if body.canvas_size is None and body.original_image_location is not None:
        plan.dropped.append("original_image_location")
    if body.canvas_size is not None and body.aspect_ratio is not None:
        plan.dropped.append("aspect_ratio")
    plan.size = size_for_output(entry, *canvas)


_T = TypeVar("_T")


def _area(image: InputImage) -> int:
    return image.width * image.height


async def _decoding(pixels: int, work: Callable[..., _T], *args: object) -> _T:
    """``work`` in a worker thread, within the process's budget of decoded pixels."""
    async with DECODE_BUDGET.hold(pixels):
        return await asyncio.to_thread(work, *args)


def _sides(value: tuple[int, int], param: str) -> tuple[int, int]:
    width, height = value
    if not (0 < width <= MAX_CANVAS_SIDE and 0 < height <= MAX_CANVAS_SIDE):
        raise InvalidRequest(f"{param} sides must be 1 to {MAX_CANVAS_SIDE}", param=param)
    return width, height


def _ratio(value: str | float) -> float:
    if isinstance(value, str):
        width, height = parse_ratio(value, param="aspect_ratio")
        return width / height
    if not 0.2 <= value <= 5:
        raise InvalidRequest("aspect_ratio must be between 0.2 and 5", param="aspect_ratio")
    return float(value)


def edit_params(
    body: EditBody, action: Action, entry: CatalogEntry, plan: EditPlan, seed: int | None
) -> GenerationParams:
    """The domain parameters for an edit action."""
    extras = body.model_params(ACTION_FIELDS)
    if seed is not None:
        extras["seed"] = seed
    transparent = action.operation == "remove_background" and _offers_transparency(entry)
    return GenerationParams(
        prompt=(body.prompt or "") if action.prompt != "unused" else "",
        operation=action.operation,
        model=entry.spec.id,
        n=body.num_results,
        size=plan.size,
        background="transparent" if transparent else None,
        extras=extras,
        images=[ImageSource("image", plan.image)],
        mask=ImageSource("mask", plan.mask) if plan.mask is not None else None,
        scale=float(body.desired_increase or DEFAULT_INCREASE)
        if action.operation == "upscale"
        else None,
        padding=plan.padding,
    )


def _offers_transparency(entry: CatalogEntry) -> bool:
    generate = entry.spec.generate
    return generate is not None and "transparent" in generate.backgrounds
