"""Erasing: the area a mask marks filled from its surroundings, with no prompt subjects.

The fill is :func:`~.inpaint.surroundings` (a smooth colour field continuing the colours and
lighting around the hole) plus seeded grain as strong as the fine texture of the kept pixels
nearby, so a hole in a textured photo does not turn into a flat smear. It is blended in
through the same inward-only feathered mask as masked edits (:func:`~.masked.feather`):
kept pixels (mask alpha 255) stay byte-identical.
"""

from __future__ import annotations

import random

from PIL import Image, ImageChops, ImageFilter, ImageOps, ImageStat

from imagegate.providers.local.draw import Rendered
from imagegate.providers.local.inpaint import surroundings
from imagegate.providers.local.inputs import blend_stages
from imagegate.providers.local.masked import feather, ramp_radius, window

__all__ = ["render_erase"]

_MAX_GRAIN = 10.0
"""Grain amplitude cap (grey levels either way), whatever the surroundings' texture."""


def render_erase(
    base: Image.Image, keep: Image.Image, rng: random.Random, stages: int = 0
) -> Rendered:
    """``base`` (RGBA) with the area ``keep`` (L, 255 keeps) drops filled from around it."""
    hole = ImageOps.invert(keep).getbbox()
    if hole is None:
        final = base.copy()
        return Rendered(final, blend_stages(base, final, stages))
    radius = ramp_radius(base.size)
    area = window(hole, base.size, radius)
    part, part_keep = base.crop(area), keep.crop(area)
    fill = _grained(surroundings(part, part_keep), part, part_keep, rng).convert("RGBA")
    fill.putalpha(part.getchannel("A"))
    final = base.copy()
    final.paste(Image.composite(part, fill, feather(part_keep, radius)), area[:2])
    return Rendered(final, blend_stages(base, final, stages))


def _grained(
    fill: Image.Image, part: Image.Image, keep: Image.Image, rng: random.Random
) -> Image.Image:
    """``fill`` (RGB) with grain as strong as ``part``'s fine detail where ``keep`` is full."""
    grey = part.convert("L")
    detail = ImageChops.subtract(grey, grey.filter(ImageFilter.BoxBlur(2)), 1.0, 128)
    kept = keep.point(lambda value: 255 if value == 255 else 0)
    if kept.getbbox() is None:
        return fill
    spread = min(_MAX_GRAIN, ImageStat.Stat(detail, kept).stddev[0])
    if spread < 1:
        return fill
    noise = Image.frombytes("L", fill.size, rng.randbytes(fill.width * fill.height))
    # Uniform noise of half-width a has standard deviation a / sqrt(3).
    amplitude = spread * 3**0.5
    noise = noise.point([round(128 + (v - 127.5) / 127.5 * amplitude) for v in range(256)])
    return ImageChops.add(fill, Image.merge("RGB", (noise, noise, noise)), 1.0, -128)
