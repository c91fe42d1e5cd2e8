"""Variations: the same subject and layout as the input, with its details varied.

The input itself is the starting point, so every shape stays where it was and recognisable.
Three things vary per variation, all drawn from ``rng``: a smooth warp (a mesh whose inner
vertices move a little, so outlines bend and objects shift slightly, the borders staying put),
a small shift of hue and brightness, and a layer of short translucent brush strokes that take
the colour under them nudged toward the input's palette (new texture and detail). The provider
seeds ``rng`` from (input hash, prompt, size, seed, variant); the prompt has no other effect.
The input's alpha is kept.

``strength`` (0–1, None for the renderer's own measure of about 0.5) sets how far a variation
strays: the warp, the colour shift and the strokes all grow with it.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence

from PIL import Image, ImageDraw, ImageEnhance

from imagegate.providers.local.draw import Rendered
from imagegate.providers.local.inputs import blend_stages
from imagegate.providers.local.palette import dominant_colours
from imagegate.providers.local.scene import RGB, mix

__all__ = ["render_variation"]

_DEFAULT_STRENGTH = 0.5
_COLOURS = 8
_MESH = 8
"""Mesh cells across each side for the warp."""
_WARP = (0.004, 0.03)
"""How far an inner mesh vertex may move, as a share of the shorter side, at strength 0 and 1."""
_HUE = (1, 4)
"""The largest hue shift (of 256 steps) at strength 0 and 1."""
_LIGHT = (0.01, 0.04)
"""The largest brightness change at strength 0 and 1."""
_STROKE_AREA = (2000, 700)
"""One brush stroke per this many pixels at strength 0 and 1."""
_STROKE_ALPHA = ((70, 110), (120, 200))
_WHITE: RGB = (255, 255, 255)
_BLACK: RGB = (0, 0, 0)


def render_variation(
    source: Image.Image, rng: random.Random, stages: int = 0, strength: float | None = None
) -> Rendered:
    """A variation of ``source`` (RGBA, already at the output size), RGBA like it.

    ``strength`` 0–1 (None: the renderer's own measure) sets how far it strays.
    """
    amount = _DEFAULT_STRENGTH if strength is None else min(1.0, max(0.0, strength))
    palette = dominant_colours(source, _COLOURS)
    rgb = source.convert("RGB")
    painted = _warp(rgb, rng, _lerp(_WARP, amount) * min(rgb.size))
    painted = _shift_colour(painted, rng, amount)
    _brush(painted, rgb, palette, rng, amount)
    final = painted.convert("RGBA")
    final.putalpha(source.getchannel("A"))
    return Rendered(final, blend_stages(source, final, stages))


def _lerp(ends: tuple[float, float], t: float) -> float:
    return ends[0] + (ends[1] - ends[0]) * t


def _warp(image: Image.Image, rng: random.Random, reach: float) -> Image.Image:
    """``image`` bent by a mesh whose inner vertices move up to ``reach`` pixels."""
    width, height = image.size
    xs = [round(width * i / _MESH) for i in range(_MESH + 1)]
    ys = [round(height * j / _MESH) for j in range(_MESH + 1)]
    moved: dict[tuple[int, int], tuple[float, float]] = {}
    for j, y in enumerate(ys):
        for i, x in enumerate(xs):
            inner_x, inner_y = 0 < i < _MESH, 0 < j < _MESH
            dx = rng.uniform(-reach, reach) if inner_x else 0.0
            dy = rng.uniform(-reach, reach) if inner_y else 0.0
            moved[i, j] = (x + dx, y + dy)
    mesh = []
    for j in range(_MESH):
        for i in range(_MESH):
            box = (xs[i], ys[j], xs[i + 1], ys[j + 1])
            quad = (*moved[i, j], *moved[i, j + 1], *moved[i + 1, j + 1], *moved[i + 1, j])
            mesh.append((box, quad))
    return image.transform(image.size, Image.Transform.MESH, mesh, Image.Resampling.BICUBIC)


def _shift_colour(image: Image.Image, rng: random.Random, amount: float) -> Image.Image:
    top = _lerp(_HUE, amount)
    turn = round(rng.uniform(-top, top))
    hue, saturation, value = image.convert("HSV").split()
    if turn:
        hue = hue.point(lambda h: (h + turn) % 256)
    shifted = Image.merge("HSV", (hue, saturation, value)).convert("RGB")
    light = _lerp(_LIGHT, amount)
    return ImageEnhance.Brightness(shifted).enhance(1 + rng.uniform(-light, light))


def _brush(
    image: Image.Image,
    source: Image.Image,
    palette: Sequence[RGB],
    rng: random.Random,
    amount: float,
) -> None:
    """Paint short translucent strokes over ``image`` in place, coloured like ``source``."""
    pen = ImageDraw.Draw(image, "RGBA")
    width, height = image.size
    unit = min(width, height)
    small = source.resize((max(1, width // 8), max(1, height // 8)), Image.Resampling.BOX)
    cells, columns, rows = small.tobytes(), small.width, small.height
    lean = rng.uniform(0, math.pi)
    alphas = tuple(round(_lerp(ends, amount)) for ends in zip(*_STROKE_ALPHA, strict=True))
    for _ in range(max(64, round(width * height / _lerp(_STROKE_AREA, amount)))):
        x, y = rng.uniform(0, width), rng.uniform(0, height)
        at = 3 * (
            min(rows - 1, int(y * rows / height)) * columns
            + min(columns - 1, int(x * columns / width))
        )
        local: RGB = (cells[at], cells[at + 1], cells[at + 2])
        colour = mix(local, rng.choice(palette), rng.uniform(0, 0.3))
        light = rng.uniform(-0.18, 0.18)
        colour = mix(colour, _WHITE if light > 0 else _BLACK, abs(light))
        angle = lean + rng.gauss(0, 0.35)
        half = unit * rng.uniform(0.004, 0.016)
        dx, dy = math.cos(angle) * half, math.sin(angle) * half
        stroke = max(1, round(unit * rng.uniform(0.003, 0.008)))
        alpha = rng.randint(alphas[0], alphas[1])
        pen.line([(x - dx, y - dy), (x + dx, y + dy)], (*colour, alpha), stroke)
