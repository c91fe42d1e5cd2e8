"""Where a picture's sky and ground are, and recolouring them without touching the rest.

:func:`find_horizon` looks for the row where the picture's colour changes most from the rows
above to the rows below (on a reduced copy, over kept pixels only when a mask is given): the line
between sky and land or sea in a landscape. :func:`region` is the soft mask of the pixels in a
band (above or below that row) whose colour is close to the band's commonest colours, so a sun
in the sky or a house on the grass is left out. :func:`recolour` gives such a region a new hue
and saturation while keeping its own light and shade (a sky's gradient stays a gradient).
"""

from __future__ import annotations

from typing import Literal

from PIL import Image, ImageChops, ImageDraw, ImageFilter

from imagegate.providers.local.palette import dominant_colours
from imagegate.providers.local.scene import RGB

__all__ = ["ABOVE", "BELOW", "Band", "band_mask", "find_horizon", "recolour", "region"]

Band = Literal["above", "below", "all"]
ABOVE = frozenset({"sky", "background"})
"""Prompt subjects that name the part of a picture above its horizon."""
BELOW = frozenset({"sea", "hills"})
"""Prompt subjects that name the part below it."""

_WORK_WIDTH = 96
_REACH = 3
"""Rows on each side of a candidate horizon that are compared (on the reduced copy)."""
_SEARCH = (0.15, 0.9)
"""Where a horizon may be, as fractions of the height."""
_MIN_STEP = 28
"""The smallest colour change (summed over channels) that counts as a horizon."""
_TOLERANCE = 45
"""A band pixel within this distance (largest channel difference) of one of the band's
commonest colours belongs to its region."""
_SOFT = 30


def find_horizon(image: Image.Image, keep: Image.Image | None = None) -> int | None:
    """The row of ``image``'s horizon, or None when no row stands out.

    With ``keep`` (L, 255 = a pixel that stays), only kept pixels are looked at.
    """
    width, height = image.size
    scale = min(1.0, _WORK_WIDTH / width)
    small_size = (max(1, round(width * scale)), max(1, round(height * scale)))
    rgb = image.convert("RGB").resize(small_size, Image.Resampling.BOX)
    weight = (
        keep.resize(small_size, Image.Resampling.BOX).point(lambda v: 255 if v > 200 else 0)
        if keep is not None
        else Image.new("L", small_size, 255)
    )
    rows = _row_means(rgb, weight)
    best, best_step = None, float(_MIN_STEP)
    low, high = (round(small_size[1] * f) for f in _SEARCH)
    for y in range(max(_REACH, low), min(small_size[1] - _REACH, high) + 1):
        above = [rows[i] for i in range(y - _REACH, y) if rows[i] is not None]
        below = [rows[i] for i in range(y, y + _REACH) if rows[i] is not None]
        if len(above) < _REACH or len(below) < _REACH:
            continue
        step = sum(abs(a - b) for a, b in zip(_mean(above), _mean(below), strict=True))
        if step > best_step:
            best, best_step = y, step
    return None if best is None else round(best / scale)


def _row_means(rgb: Image.Image, weight: Image.Image) -> list[tuple[float, ...] | None]:
    width = rgb.width
    pixels, kept = rgb.tobytes(), weight.tobytes()
    rows: list[tuple[float, ...] | None] = []
    for y in range(rgb.height):
        total, sums = 0, [0, 0, 0]
        for x in range(width):
            if kept[y * width + x]:
                at = 3 * (y * width + x)
                sums[0] += pixels[at]
                sums[1] += pixels[at + 1]
                sums[2] += pixels[at + 2]
                total += 1
        rows.append(tuple(s / total for s in sums) if total * 4 >= width else None)
    return rows


def _mean(values: list[tuple[float, ...] | None]) -> tuple[float, ...]:
    present = [v for v in values if v is not None]
    return tuple(sum(v[i] for v in present) / len(present) for i in range(3))


def band_mask(size: tuple[int, int], horizon: int | None, band: Band) -> Image.Image:
    """255 in the rows of ``band`` (the whole picture when there is no horizon)."""
    mask = Image.new("L", size, 255 if band == "all" or horizon is None else 0)
    if band != "all" and horizon is not None:
        box = (0, 0, size[0], horizon) if band == "above" else (0, horizon, size[0], size[1])
        ImageDraw.Draw(mask).rectangle(box, fill=255)
    return mask


def region(image: Image.Image, horizon: int | None, band: Band) -> Image.Image:
    """The soft mask (L) of the pixels in ``band`` close to the band's commonest colours."""
    rgb = image.convert("RGB")
    within = band_mask(rgb.size, horizon, band)
    if within.getbbox() is None:
        return within
    box = within.getbbox()
    assert box is not None
    colours = dominant_colours(rgb.crop(box), 3)[:2]
    nearest = Image.new("L", rgb.size, 255)
    for colour in colours:
        red, green, blue = ImageChops.difference(rgb, Image.new("RGB", rgb.size, colour)).split()
        nearest = ImageChops.darker(
            nearest, ImageChops.lighter(ImageChops.lighter(red, green), blue)
        )
    ramp = [
        max(0, min(255, round((_TOLERANCE + _SOFT - level) * 255 / _SOFT))) for level in range(256)
    ]
    soft = nearest.point(ramp).filter(ImageFilter.BoxBlur(max(1, min(rgb.size) // 256)))
    return ImageChops.multiply(soft, within)


def recolour(image: Image.Image, where: Image.Image, colour: RGB, amount: float) -> Image.Image:
    """``image`` (RGB or RGBA) with the pixels in ``where`` moved ``amount`` (0–1) toward
    ``colour``'s hue and saturation, their brightness scaled so the region's mean matches
    ``colour``'s while its own shading stays."""
    rgb = image.convert("RGB")
    value = rgb.convert("HSV").getchannel("V")
    target_h, target_s, target_v = Image.new("RGB", (1, 1), colour).convert("HSV").getpixel((0, 0))  # type: ignore[misc]
    mean_v = _masked_mean(value, where) or 1.0
    gain = target_v / mean_v
    shaded = value.point(lambda v: max(0, min(255, round(v * gain))))
    moved = Image.merge(
        "HSV",
        (
            Image.new("L", rgb.size, target_h),
            Image.new("L", rgb.size, target_s),
            Image.blend(value, shaded, 0.85),
        ),
    ).convert("RGB")
    strength = where.point(lambda v: round(v * amount))
    result = Image.composite(moved, rgb, strength)
    if image.mode == "RGBA":
        result = result.convert("RGBA")
        result.putalpha(image.getchannel("A"))
    return result


def _masked_mean(channel: Image.Image, where: Image.Image) -> float | None:
    weights = where.histogram()
    total = sum(weights)
    if not total:
        return None
    weighted = ImageChops.multiply(channel, where)
    # mean(channel * w / 255) / mean(w / 255), from the two images' means
    mean_weighted = sum(i * n for i, n in enumerate(weighted.histogram()))
    mean_where = sum(i * n for i, n in enumerate(weights))
    return mean_weighted / mean_where * 255 if mean_where else None
