"""Variations: new pictures with the input's layout and palette but fresh detail.

The input is averaged down to a coarse grid (its layout), scaled back up smoothly and partly
posterised to its eight dominant colours (its palette). Then brush strokes are painted over
it: each takes the colour of the coarse cell beneath, nudged toward a palette colour, and
leans along one direction chosen per variation. Everything random comes from ``rng``, which
the provider seeds from (input hash, prompt, size, seed, variant); the prompt has no other
effect. The input's alpha is kept.

``strength`` (0–1), when given, sets how far the variation strays: the grid gets finer (more
layout kept) and the repainted picture is mixed back with the input, both less so as the
strength grows. Without it the picture is exactly as it always was.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence

from PIL import Image, ImageDraw

from imagegate.providers.local.draw import Rendered
from imagegate.providers.local.inputs import blend_stages
from imagegate.providers.local.palette import dominant_colours, posterise
from imagegate.providers.local.scene import RGB, mix

__all__ = ["render_variation"]

_CELLS = (18, 30)
"""Coarse cells across the shorter side, drawn per variation: how much layout is kept."""
_COLOURS = 8
_POSTER = 0.6
"""How far the smooth layout is pushed to the flat palette colours."""
_STROKE_AREA = 900
"""One brush stroke per this many pixels."""
_STRENGTH_CELLS = (64, 14)
"""Coarse cells across the shorter side at strength 0 and at strength 1."""
_STRENGTH_MIX = (0.25, 1.0)
"""How much of the repainted picture (against the input) shows at strength 0 and 1."""
_WHITE: RGB = (255, 255, 255)
_BLACK: RGB = (0, 0, 0)


def render_variation(
    source: Image.Image, rng: random.Random, stages: int = 0, strength: float | None = None
) -> Rendered:
    """A variation of ``source`` (RGBA, already at the output size), RGBA like it.

    ``strength`` 0–1 (None: the renderer's own measure) sets how far it strays.
    """
    palette = dominant_colours(source, _COLOURS)
    cells = rng.randint(*_CELLS)
    if strength is not None:
        strength = min(1.0, max(0.0, strength))
        cells = round(_lerp(_STRENGTH_CELLS, strength))
    grid = _grid(source.size, cells)
    # Resampling RGBA averages premultiplied, so colour hidden under transparency stays out.
    coarse = source.resize(grid, Image.Resampling.BOX).convert("RGB")
    smooth = coarse.resize(source.size, Image.Resampling.BICUBIC)
    painted = Image.blend(smooth, posterise(smooth, palette), _POSTER)
    _brush(painted, coarse, palette, rng)
    if strength is not None:
        painted = Image.blend(source.convert("RGB"), painted, _lerp(_STRENGTH_MIX, strength))
    final = painted.convert("RGBA")
    final.putalpha(source.getchannel("A"))
    return Rendered(final, blend_stages(source, final, stages))


def _lerp(ends: tuple[float, float], t: float) -> float:
    return ends[0] + (ends[1] - ends[0]) * t


def _grid(size: tuple[int, int], cells: int) -> tuple[int, int]:
    step = max(1.0, min(size) / cells)
    return max(1, round(size[0] / step)), max(1, round(size[1] / step))


def _brush(
    image: Image.Image, coarse: Image.Image, palette: Sequence[RGB], rng: random.Random
) -> None:
    """Paint short translucent strokes over ``image`` in place."""
    pen = ImageDraw.Draw(image, "RGBA")
    width, height = image.size
    unit = min(width, height)
    cells, columns, rows = coarse.tobytes(), coarse.width, coarse.height
    lean = rng.uniform(0, math.pi)
    for _ in range(max(64, width * height // _STROKE_AREA)):
        x, y = rng.uniform(0, width), rng.uniform(0, height)
        at = 3 * (
            min(rows - 1, int(y * rows / height)) * columns
            + min(columns - 1, int(x * columns / width))
        )
        local: RGB = (cells[at], cells[at + 1], cells[at + 2])
        colour = mix(local, rng.choice(palette), rng.uniform(0, 0.35))
        light = rng.uniform(-0.12, 0.12)
        colour = mix(colour, _WHITE if light > 0 else _BLACK, abs(light))
        angle = lean + rng.gauss(0, 0.35)
        half = unit * rng.uniform(0.006, 0.022)
        dx, dy = math.cos(angle) * half, math.sin(angle) * half
        stroke = max(1, round(unit * rng.uniform(0.004, 0.012)))
        pen.line([(x - dx, y - dy), (x + dx, y + dy)], (*colour, rng.randint(110, 190)), stroke)
