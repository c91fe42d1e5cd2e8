"""Outpainting: ``images[0]`` on a larger canvas, the new border continued from its edges.

The canvas is ``padding`` (left, top, right, bottom, in input pixels) larger than the input.
The border starts as the input's edges stretched outward (each side's outer band averaged
into one line of pixels and repeated, the corners filled with the corner colours), so colours
and lines such as a horizon continue across the seam; it is softened with distance from the
input: sharp next to it, fading into a heavy blur farther out. The prompt's colours tone that
fill, and its subjects are drawn into the border strips: sky things into the top strip, ground
things into the bottom one, each subject once, into the first strip (in its order of
preference) that is large enough. The input is pasted back on top.

The whole canvas is composed straight at the output size: when that differs from the padded
size, the input is first resized to the footprint it will have there and the padding scaled
to match, which costs one resize of the input instead of one of the far larger canvas. An
opaque input is worked on in RGB, which halves the cost of every step.
"""

from __future__ import annotations

import random
from dataclasses import replace

from PIL import Image, ImageDraw, ImageFilter

from imagegate.providers.local.draw import Rendered, render_scene
from imagegate.providers.local.inputs import blend_stages
from imagegate.providers.local.layout import Box
from imagegate.providers.local.palette import tone
from imagegate.providers.local.scene import Scene, Subject

__all__ = ["render_outpaint"]

Padding = tuple[int, int, int, int]

_WORK_SIDE = 256
"""The blur and its ramp are computed on a copy reduced to about this shorter side."""
_BLUR = 1 / 12
"""Blur radius far from the input, as a fraction of the shorter side."""
_RAMP = 1 / 6
"""How far (fraction of the shorter side) the sharp stretch takes to fade into the blur."""
_BAND = 64
"""Each side's outer band, the shorter input side over this, is averaged into its edge line."""
_TONE = 0.3
_MIN_STRIP = 48
"""A strip narrower than this many canvas pixels gets no subjects."""
_SKY = frozenset({"sun", "moon", "stars", "clouds", "birds", "rainbow", "sky"})
_GROUND = frozenset({"sea", "trees", "flowers", "house", "hills", "mountains", "boat"})
_PREFERENCES = {
    "sky": ("top", "left", "right", "bottom"),
    "ground": ("bottom", "left", "right", "top"),
}


def render_outpaint(
    source: Image.Image,
    padding: Padding,
    size: tuple[int, int],
    scene: Scene,
    rng: random.Random,
    stages: int = 0,
) -> Rendered:
    """``source`` (RGBA, at its own size) outpainted by ``padding`` and fitted to ``size``
    (RGB if ``source`` is opaque).

    Previews go from the filled border without subjects toward the result.
    """
    inner = _footprint(source.size, padding, size)
    if source.getchannel("A").getextrema() == (255, 255):
        source = source.convert("RGB")
    footprint = (inner[2] - inner[0], inner[3] - inner[1])
    if source.size != footprint:
        source = source.resize(footprint, Image.Resampling.LANCZOS, reducing_gap=3.0)
    fill = tone(_continue(source, size, inner), scene.colours(), _TONE)
    plain = fill.copy() if stages else fill
    for strip, part in _strips(size, inner, scene).items():
        layer = _draw(part, strip, rng)
        if layer is None:
            continue
        if fill.mode == "RGBA":
            fill.alpha_composite(layer, strip[:2])
        else:
            fill.paste(layer, strip[:2], layer)
    fill.paste(source, inner[:2])
    plain.paste(source, inner[:2])
    return Rendered(fill, blend_stages(plain, fill, stages))


def _footprint(source: tuple[int, int], padding: Padding, size: tuple[int, int]) -> Box:
    """Where the input lands on the output: the padded canvas scaled to ``size``."""
    left, top, right, bottom = padding
    scale_x = size[0] / (source[0] + left + right)
    scale_y = size[1] / (source[1] + top + bottom)
    x0, y0 = round(left * scale_x), round(top * scale_y)
    x1, y1 = round((left + source[0]) * scale_x), round((top + source[1]) * scale_y)
    return x0, y0, max(x0 + 1, x1), max(y0 + 1, y1)


def _continue(source: Image.Image, size: tuple[int, int], inner: Box) -> Image.Image:
    """A canvas of ``size`` with ``source``'s edges stretched outward from ``inner``, blurred
    with distance from it."""
    stretched = _stretch(source, size, inner)
    factor = max(1, min(size) // _WORK_SIDE)
    small = stretched.reduce(factor)
    unit = min(small.size)
    far = small.filter(ImageFilter.GaussianBlur(max(1.0, unit * _BLUR)))
    # Grown by the ramp's radius, the ramp is still 255 at the seam: no blur touches the input.
    reach = max(1, round(unit * _RAMP))
    ramp = Image.new("L", small.size, 0)
    x0, y0, x1, y1 = (round(edge / factor) for edge in inner)
    ImageDraw.Draw(ramp).rectangle((x0 - reach, y0 - reach, x1 + reach, y1 + reach), fill=255)
    ramp = ramp.filter(ImageFilter.BoxBlur(reach))
    return Image.composite(
        stretched,
        far.resize(size, Image.Resampling.BILINEAR),
        ramp.resize(size, Image.Resampling.BILINEAR),
    )


def _stretch(source: Image.Image, size: tuple[int, int], inner: Box) -> Image.Image:
    """``source`` at ``inner`` on a ``size`` canvas, each side's outer band repeated outward."""
    canvas = Image.new(source.mode, size)
    canvas.paste(source, inner[:2])
    width, height = source.size
    x0, y0, x1, y1 = inner
    band = max(1, min(width, height) // _BAND)
    sides = (
        ((0, 0, band, height), (1, height), (0, y0, x0, y1)),
        ((width - band, 0, width, height), (1, height), (x1, y0, size[0], y1)),
        ((0, 0, width, band), (width, 1), (x0, 0, x1, y0)),
        ((0, height - band, width, height), (width, 1), (x0, y1, x1, size[1])),
        ((0, 0, band, band), (1, 1), (0, 0, x0, y0)),
        ((width - band, 0, width, band), (1, 1), (x1, 0, size[0], y0)),
        ((0, height - band, band, height), (1, 1), (0, y1, x0, size[1])),
        ((width - band, height - band, width, height), (1, 1), (x1, y1, size[0], size[1])),
    )
    for crop, line, (left, top, right, bottom) in sides:
        if right > left and bottom > top:
            edge = source.crop(crop).resize(line, Image.Resampling.BOX)
            canvas.paste(
                edge.resize((right - left, bottom - top), Image.Resampling.NEAREST), (left, top)
            )
    return canvas


def _strips(size: tuple[int, int], inner: Box, scene: Scene) -> dict[Box, Scene]:
    """The border strips that receive subjects, each with its share of ``scene``."""
    width, height = size
    boxes = {
        "top": (0, 0, width, inner[1]),
        "bottom": (0, inner[3], width, height),
        "left": (0, inner[1], inner[0], inner[3]),
        "right": (inner[2], inner[1], width, inner[3]),
    }
    usable = {
        side: box
        for side, box in boxes.items()
        if min(box[2] - box[0], box[3] - box[1]) >= _MIN_STRIP
    }
    if not usable:
        return {}
    largest = max(usable, key=lambda side: _area(usable[side]))
    shares: dict[str, list[Subject]] = {side: [] for side in usable}
    for subject in scene.subjects:
        shares[_side(subject, usable, largest)].append(subject)
    parts = {
        usable[side]: replace(scene, subjects=tuple(subjects), texts=())
        for side, subjects in shares.items()
        if subjects
    }
    if scene.texts:
        box = usable[largest]
        parts[box] = replace(parts.get(box, replace(scene, subjects=())), texts=scene.texts)
    return parts


def _side(subject: Subject, usable: dict[str, Box], largest: str) -> str:
    group = "sky" if subject.kind in _SKY else "ground" if subject.kind in _GROUND else ""
    return next((side for side in _PREFERENCES.get(group, ()) if side in usable), largest)


def _area(box: Box) -> int:
    return (box[2] - box[0]) * (box[3] - box[1])


def _draw(scene: Scene, box: Box, rng: random.Random) -> Image.Image | None:
    """``scene``'s subjects drawn to fill ``box``, on a clear layer; None if nothing shows."""
    drawn = render_scene(scene, box[2] - box[0], box[3] - box[1], rng, transparent=True).final
    return drawn if drawn.getchannel("A").getbbox() is not None else None
