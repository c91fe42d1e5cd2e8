"""Masked edits: re-render only the area a mask marks, leaving every kept pixel untouched.

The area to change is where the mask's alpha is below 255. It is first filled with a smooth
guess from its surroundings (:mod:`.inpaint`). If the prompt names subjects or text, they are
laid out within the area's bounding box and drawn over that fill, which is toned toward the
prompt's free colours; otherwise the area gets the renderer's abstract shapes in the prompt's
colours (or, with none, in colours of the surroundings), so a masked edit is never a no-op.

New content continues the scene instead of starting one of its own: the picture's horizon is
found in the kept pixels (:func:`.regions.find_horizon`) and everything is laid out on it, so a
sea asked for below the horizon begins where the picture's land or sea began (no second
horizon); sky words recolour the fill above it. When the kept pixels show no horizon, a sea
starts at the area's top edge and a sky reaches its bottom edge.

The patch is blended in through the mask feathered inward only: ``max(keep, blur(keep))``, over
a ramp of about 2% of the picture, so the new content fades into the old. Kept pixels (alpha
255) stay byte-identical, pixels more than the ramp width inside the area are fully replaced,
and partial alpha gives a partial change.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from PIL import Image, ImageChops, ImageFilter, ImageOps

from imagegate.providers.local.draw import render_scene
from imagegate.providers.local.inpaint import surroundings
from imagegate.providers.local.layout import Box
from imagegate.providers.local.overlay import ADDED_SKIP, Region, split_scene
from imagegate.providers.local.palette import dominant_colours, tone
from imagegate.providers.local.regions import band_mask, find_horizon, recolour
from imagegate.providers.local.scene import RGB, Scene, Subject

__all__ = ["feather", "ramp_radius", "render_masked", "window"]

_MIN_SIDE = 64
"""The renderer's smallest reliable canvas; smaller areas are drawn larger and clipped."""
_RAMP_DIVISOR = 48
"""The inward ramp is the shorter side over this (21 px at 1024), at least 2 px."""
_CONTEXT_DIVISOR = 8
"""The window reaches the shorter side over this beyond the area, for the fill to sample."""
_FILL_TONE = 0.35
_PROMPT_SHAPES = 0.85
_SURROUNDING_SHAPES = 0.5
_SKY_RECOLOUR = 0.9


def render_masked(
    base: Image.Image,
    keep: Image.Image,
    scene: Scene,
    borrowed: Sequence[RGB],
    rng: random.Random,
) -> Image.Image:
    """``base`` (RGBA) with the area ``keep`` (L) drops re-rendered from ``scene``.

    ``borrowed`` colours (from reference images) tone the fill like the prompt's own. Only a
    window around the area is worked on; the rest of ``base`` is copied.
    """
    hole = ImageOps.invert(keep).getbbox()
    if hole is None:
        return base.copy()
    radius = ramp_radius(base.size)
    area = window(hole, base.size, radius)
    inside = (hole[0] - area[0], hole[1] - area[1], hole[2] - area[0], hole[3] - area[1])
    found = find_horizon(base, keep)
    horizon = None if found is None else found - area[1]
    part = _repaint(base.crop(area), keep.crop(area), inside, scene, borrowed, rng, radius, horizon)
    result = base.copy()
    result.paste(part, area[:2])
    return result


def ramp_radius(size: tuple[int, int]) -> int:
    """The width of the inward feathering ramp for an image of ``size``."""
    return max(2, round(min(size) / _RAMP_DIVISOR))


def feather(keep: Image.Image, radius: int) -> Image.Image:
    """``keep`` with a ``radius``-pixel linear ramp spread inward into the changed area only."""
    return ImageChops.lighter(keep, keep.filter(ImageFilter.BoxBlur(radius)))


def window(hole: Box, size: tuple[int, int], radius: int) -> Box:
    """``hole`` with room around it: context for the fill and more than the ramp's reach."""
    margin = max(2 * radius, min(size) // _CONTEXT_DIVISOR)
    return (
        max(0, hole[0] - margin),
        max(0, hole[1] - margin),
        min(size[0], hole[2] + margin),
        min(size[1], hole[3] + margin),
    )


def _repaint(
    base: Image.Image,
    keep: Image.Image,
    hole: Box,
    scene: Scene,
    borrowed: Sequence[RGB],
    rng: random.Random,
    radius: int,
    horizon: int | None,
) -> Image.Image:
    fill = _fill(base, keep, horizon)
    drawn, regions = split_scene(scene)
    horizon = _local_horizon(horizon, hole, [named.band for named in regions])
    subjects = _subjects(drawn, base.size, hole, rng, horizon)
    if subjects is None and not regions:
        fill = _shapes(fill, hole, (*scene.colours(), *borrowed), rng)
    else:
        fill = tone(fill, (*scene.palette, *borrowed), _FILL_TONE)
        fill = _regions(fill, regions, scene.mood, horizon, rng)
    patch = fill.convert("RGBA")
    patch.putalpha(base.getchannel("A"))
    if subjects is not None:
        patch = Image.alpha_composite(patch, subjects)
    return Image.composite(base, patch, feather(keep, radius))


def _fill(base: Image.Image, keep: Image.Image, horizon: int | None) -> Image.Image:
    """The smooth guess under the area, made apart above and below the picture's horizon so
    the sky's colours never smear into the ground's (or the other way round)."""
    if horizon is None or not 0 < horizon < base.height:
        return surroundings(base, keep)
    above = band_mask(base.size, horizon, "above")
    sky = surroundings(base, ImageChops.multiply(keep, above))
    ground = surroundings(base, ImageChops.multiply(keep, ImageOps.invert(above)))
    return Image.composite(sky, ground, above)


def _local_horizon(horizon: int | None, hole: Box, bands: Sequence[str]) -> int | None:
    """The picture's horizon, or where one must be for what the prompt names."""
    if horizon is not None or not bands:
        return horizon
    if all(band == "below" for band in bands):
        return hole[1]
    if all(band == "above" for band in bands):
        return hole[3]
    return None


def _regions(
    fill: Image.Image,
    regions: Sequence[Region],
    mood: str | None,
    horizon: int | None,
    rng: random.Random,
) -> Image.Image:
    """``fill`` (RGB) with the sky recoloured and the sea or grass drawn below the horizon."""
    for named in regions:
        if named.band == "above":
            where = band_mask(fill.size, horizon, "above")
            fill = recolour(fill, where, named.colour, _SKY_RECOLOUR)
            continue
        ground = Scene(subjects=(Subject(named.kind, named.colour),), mood=mood)
        drawn = render_scene(ground, *fill.size, rng, transparent=False, horizon=horizon).final
        fill = Image.composite(drawn.convert("RGB"), fill, band_mask(fill.size, horizon, "below"))
    return fill


def _canvas_box(hole: Box) -> Box:
    """``hole`` grown (about its centre) to at least the renderer's smallest canvas."""
    x0, y0, x1, y1 = hole
    grow_x, grow_y = max(0, _MIN_SIDE - (x1 - x0)), max(0, _MIN_SIDE - (y1 - y0))
    return (
        x0 - grow_x // 2,
        y0 - grow_y // 2,
        x1 + grow_x - grow_x // 2,
        y1 + grow_y - grow_y // 2,
    )


def _subjects(
    scene: Scene, size: tuple[int, int], hole: Box, rng: random.Random, horizon: int | None
) -> Image.Image | None:
    """The scene's subjects laid out within ``hole`` on the picture's ``horizon``, on a clear
    layer; None if nothing shows."""
    if not (scene.subjects or scene.texts):
        return None
    x0, y0, x1, y1 = _canvas_box(hole)
    local = None if horizon is None else horizon - y0
    drawn = render_scene(
        scene, x1 - x0, y1 - y0, rng, transparent=True, horizon=local, skip=ADDED_SKIP
    ).final
    if drawn.getchannel("A").getbbox() is None:
        return None
    layer = Image.new("RGBA", size, (0, 0, 0, 0))
    layer.paste(drawn, (x0, y0))
    return layer


def _shapes(
    fill: Image.Image, hole: Box, colours: Sequence[RGB], rng: random.Random
) -> Image.Image:
    """``fill`` with abstract shapes blended into ``hole``, in ``colours`` or the fill's own."""
    palette = tuple(dict.fromkeys(colours)) or tuple(dominant_colours(fill.crop(hole), 2))
    x0, y0, x1, y1 = _canvas_box(hole)
    local = fill.crop((x0, y0, x1, y1))
    strength = _PROMPT_SHAPES if colours else _SURROUNDING_SHAPES
    drawn = render_scene(Scene(palette=palette), x1 - x0, y1 - y0, rng, transparent=False).final
    result = fill.copy()
    result.paste(Image.blend(local, drawn, strength), (x0, y0))
    return result
