"""Pillow drawing: turn a prompt into pixels, deterministically and fast.

:func:`render` parses the prompt, lays the scene out with a :class:`random.Random` seeded from
a SHA-256 of (prompt, width, height, seed, variant), and draws the elements back to front with
``ImageDraw``. Gradients are tiny strips resized by Pillow, never per-pixel Python loops.

A transparent render draws the same RGB picture without backdrop elements and records an alpha
mask of everything drawn; the result is RGBA with alpha 0 wherever no subject is.
"""

from __future__ import annotations

import hashlib
import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from PIL import Image, ImageDraw, ImageFont

from imagegate.providers.local.layout import Box, Element, Point, compose
from imagegate.providers.local.scene import RGB, Scene, mix, parse_prompt

__all__ = [
    "SHAPE_DRAWERS",
    "Rendered",
    "Surface",
    "draw_full_moon",
    "draw_waves",
    "fit_text",
    "gradient",
    "render",
    "render_scene",
    "render_seed",
    "stage_cuts",
]

_WHITE: RGB = (255, 255, 255)
_BLACK: RGB = (0, 0, 0)
_Font = ImageFont.FreeTypeFont | ImageFont.ImageFont


@dataclass(frozen=True, slots=True)
class Rendered:
    """The finished image and ``stages`` partially drawn snapshots of it, earliest first."""

    final: Image.Image
    stages: list[Image.Image] = field(default_factory=list)


def render_seed(prompt: str, width: int, height: int, seed: int, variant: int) -> int:
    """The RNG seed for one image: the first 16 bytes of a SHA-256 over every input."""
    key = f"{prompt}\x00{width}\x00{height}\x00{seed}\x00{variant}".encode()
    return int.from_bytes(hashlib.sha256(key).digest()[:16], "big")


def render(
    prompt: str,
    width: int,
    height: int,
    *,
    seed: int,
    variant: int,
    transparent: bool,
    stages: int = 0,
) -> Rendered:
    """Draw ``prompt`` at ``width`` × ``height``; RGBA when ``transparent``, else RGB.

    The same arguments always give the same pixels. ``stages`` snapshots are taken after
    drawing 1/(stages+1), 2/(stages+1), … of the elements (the first always has the backdrop).
    """
    rng = random.Random(render_seed(prompt, width, height, seed, variant))
    return render_scene(
        parse_prompt(prompt), width, height, rng, transparent=transparent, stages=stages
    )


def render_scene(
    scene: Scene,
    width: int,
    height: int,
    rng: random.Random,
    *,
    transparent: bool,
    stages: int = 0,
    horizon: int | None = None,
    skip: frozenset[str] = frozenset(),
) -> Rendered:
    """Lay ``scene`` out with ``rng`` and draw it; :func:`render` for an already parsed scene.

    Edits and variations build or adjust a :class:`Scene` themselves and call this directly:
    ``horizon`` (a row) lines a landscape up with a picture's own, and elements of the kinds
    in ``skip`` are left out.
    """
    layout = compose(scene, width, height, rng, horizon=horizon)
    elements = [
        e for e in layout.elements if not (transparent and e.backdrop) and e.kind not in skip
    ]
    canvas = _Canvas(width, height, transparent)
    cuts = stage_cuts(len(elements), stages)
    snapshots = []
    drawn = 0
    for cut in cuts:
        for element in elements[drawn:cut]:
            _DRAWERS[element.kind](canvas, element)
        drawn = max(drawn, cut)
        snapshots.append(canvas.snapshot())
    for element in elements[drawn:]:
        _DRAWERS[element.kind](canvas, element)
    return Rendered(canvas.finish(), snapshots)


def stage_cuts(count: int, stages: int) -> list[int]:
    """How many of ``count`` elements each of ``stages`` snapshots shows (at least one)."""
    return [min(count, max(1, count * (k + 1) // (stages + 1))) for k in range(stages)]


class Surface(Protocol):
    """What the shape drawers need: the raster :class:`_Canvas` here, an SVG writer in
    :mod:`.svg`. Colours with ``alpha`` below 255 are translucent unless ``transparent``."""

    @property
    def transparent(self) -> bool: ...

    def ellipse(self, box: Sequence[float], colour: RGB, alpha: int = 255) -> None: ...

    def ring(self, box: Sequence[float], colour: RGB, width: int, alpha: int = 255) -> None: ...

    def polygon(
        self, points: Sequence[tuple[float, float]], colour: RGB, alpha: int = 255
    ) -> None: ...

    def rectangle(
        self, box: Sequence[float], colour: RGB, radius: float = 0, alpha: int = 255
    ) -> None: ...

    def line(self, points: Sequence[tuple[float, float]], colour: RGB, width: int) -> None: ...

    def arc(self, box: Sequence[float], colour: RGB, width: int) -> None:
        """The upper half of the ellipse in ``box``, ``width`` thick inward."""


class _Canvas:
    """An RGB image plus, when transparent, an alpha mask that every opaque draw also marks."""

    def __init__(self, width: int, height: int, transparent: bool) -> None:
        self.image = Image.new("RGB", (width, height), _BLACK)
        self.pen = ImageDraw.Draw(self.image, "RGBA")
        self.mask = Image.new("L", (width, height), 0) if transparent else None
        self.mask_pen = ImageDraw.Draw(self.mask) if self.mask is not None else None

    @property
    def transparent(self) -> bool:
        return self.mask is not None

    def ink(self, colour: RGB, alpha: int = 255) -> tuple[int, int, int, int]:
        # Translucency needs something underneath; on a transparent canvas it would punch holes.
        return (*colour, 255 if self.transparent else alpha)

    def ellipse(self, box: Sequence[float], colour: RGB, alpha: int = 255) -> None:
        self.pen.ellipse(box, fill=self.ink(colour, alpha))
        if self.mask_pen is not None:
            self.mask_pen.ellipse(box, fill=255)

    def ring(self, box: Sequence[float], colour: RGB, width: int, alpha: int = 255) -> None:
        self.pen.ellipse(box, outline=self.ink(colour, alpha), width=width)
        if self.mask_pen is not None:
            self.mask_pen.ellipse(box, outline=255, width=width)

    def polygon(self, points: Sequence[tuple[float, float]], colour: RGB, alpha: int = 255) -> None:
        self.pen.polygon(points, fill=self.ink(colour, alpha))
        if self.mask_pen is not None:
            self.mask_pen.polygon(points, fill=255)

    def rectangle(
        self, box: Sequence[float], colour: RGB, radius: float = 0, alpha: int = 255
    ) -> None:
        self.pen.rounded_rectangle(box, radius=radius, fill=self.ink(colour, alpha))
        if self.mask_pen is not None:
            self.mask_pen.rounded_rectangle(box, radius=radius, fill=255)

    def line(self, points: Sequence[tuple[float, float]], colour: RGB, width: int) -> None:
        self.pen.line(points, fill=self.ink(colour), width=width, joint="curve")
        if self.mask_pen is not None:
            self.mask_pen.line(points, fill=255, width=width, joint="curve")

    def arc(self, box: Sequence[float], colour: RGB, width: int) -> None:
        self.pen.arc(box, 180, 360, fill=self.ink(colour), width=width)
        if self.mask_pen is not None:
            self.mask_pen.arc(box, 180, 360, fill=255, width=width)

    def paste(self, tile: Image.Image, origin: Point, stencil: Image.Image | None = None) -> None:
        self.image.paste(tile, origin, stencil)
        if self.mask is not None:
            self.mask.paste(
                255, (*origin, origin[0] + tile.width, origin[1] + tile.height), stencil
            )

    def text(self, centre: Point, text: str, font: _Font, stroke: int) -> None:
        self.pen.multiline_text(
            centre,
            text,
            (*_WHITE, 255),
            font,
            "mm",
            align="center",
            stroke_width=stroke,
            stroke_fill=(24, 24, 32),
        )
        if self.mask_pen is not None:
            self.mask_pen.multiline_text(
                centre, text, 255, font, "mm", align="center", stroke_width=stroke, stroke_fill=255
            )

    def snapshot(self) -> Image.Image:
        if self.mask is None:
            return self.image.copy()
        image = self.image.convert("RGBA")
        image.putalpha(self.mask)
        return image

    def finish(self) -> Image.Image:
        if self.mask is None:
            return self.image
        self.image.putalpha(self.mask)
        return self.image


def _rel(box: Box, x0: float, y0: float, x1: float, y1: float) -> tuple[float, float, float, float]:
    """The part of ``box`` between the given fractions of its width and height."""
    width, height = box[2] - box[0], box[3] - box[1]
    return (box[0] + x0 * width, box[1] + y0 * height, box[0] + x1 * width, box[1] + y1 * height)


def gradient(size: tuple[int, int], stops: Sequence[RGB]) -> Image.Image:
    """A vertical gradient through evenly spaced ``stops``, made by resizing a 1-pixel strip."""
    if len(stops) == 1:
        return Image.new("RGB", size, stops[0])
    strip = Image.new("RGB", (1, len(stops)))
    strip.putdata(list(stops))
    return strip.resize(size, Image.Resampling.BILINEAR, box=(0, 0.5, 1, len(stops) - 0.5))


def _draw_gradient(canvas: _Canvas, element: Element) -> None:
    x0, y0, x1, y1 = element.box
    if x1 > x0 and y1 > y0:
        canvas.paste(gradient((x1 - x0, y1 - y0), element.colours), (x0, y0))


def _draw_corners(canvas: _Canvas, element: Element) -> None:
    x0, y0, x1, y1 = element.box
    quad = Image.new("RGB", (2, 2))
    quad.putdata(list(element.colours[:4]))
    tile = quad.resize((x1 - x0, y1 - y0), Image.Resampling.BILINEAR, box=(0.5, 0.5, 1.5, 1.5))
    canvas.paste(tile, (x0, y0))


def _draw_polygon(canvas: Surface, element: Element) -> None:
    canvas.polygon(element.points, element.colours[0])


def _draw_ellipse(canvas: Surface, element: Element) -> None:
    canvas.ellipse(element.box, element.colours[0])


def _draw_sun(canvas: Surface, element: Element) -> None:
    body, glow = element.colours[:2]
    if not canvas.transparent:
        for scale, alpha in ((2.2, 28), (1.7, 46), (1.3, 80)):
            canvas.ellipse(_rel(element.box, *_grow(scale)), glow, alpha)
    canvas.ellipse(element.box, body)
    canvas.ellipse(_rel(element.box, 0.18, 0.14, 0.62, 0.5), mix(body, _WHITE, 0.25), 120)


def _grow(scale: float) -> tuple[float, float, float, float]:
    edge = (1 - scale) / 2
    return edge, edge, 1 - edge, 1 - edge


def _draw_moon(canvas: _Canvas, element: Element) -> None:
    body = element.colours[0]
    x0, y0, x1, y1 = element.box
    if element.style == 0:
        stencil = Image.new("L", (x1 - x0, y1 - y0), 0)
        pen = ImageDraw.Draw(stencil)
        pen.ellipse((0, 0, stencil.width - 1, stencil.height - 1), fill=255)
        shift = stencil.width * 0.38
        pen.ellipse(
            (shift, -shift * 0.4, stencil.width + shift, stencil.height - shift * 0.4), fill=0
        )
        canvas.paste(Image.new("RGB", stencil.size, body), (x0, y0), stencil)
        return
    draw_full_moon(canvas, element)


def draw_full_moon(surface: Surface, element: Element) -> None:
    """A full moon (style 1) with craters in its shadow colour."""
    body, shadow = element.colours[:2]
    surface.ellipse(element.box, body)
    for crater in ((0.22, 0.3, 0.42, 0.5), (0.55, 0.55, 0.8, 0.8), (0.35, 0.65, 0.5, 0.8)):
        surface.ellipse(_rel(element.box, *crater), shadow, 150)


def _draw_stars(canvas: Surface, element: Element) -> None:
    radius = element.size
    for x, y in element.points:
        canvas.ellipse((x - radius, y - radius, x + radius, y + radius), element.colours[0])


def _star_points(box: Box, spikes: int = 5, inner: float = 0.45) -> list[tuple[float, float]]:
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    outer = (box[2] - box[0]) / 2
    points = []
    for index in range(spikes * 2):
        radius = outer if index % 2 == 0 else outer * inner
        angle = -math.pi / 2 + index * math.pi / spikes
        points.append((cx + radius * math.cos(angle), cy + radius * math.sin(angle)))
    return points


def _draw_star(canvas: Surface, element: Element) -> None:
    canvas.polygon(_star_points(element.box), element.colours[0])


def _draw_rainbow(canvas: Surface, element: Element) -> None:
    band = element.size
    for index, colour in enumerate(element.colours):
        inset = index * band
        x0, y0, x1, y1 = element.box
        canvas.arc((x0 + inset, y0 + inset, x1 - inset, y1 - inset), colour, band + 1)


_CLOUD_PUFFS: tuple[tuple[tuple[float, float, float, float], ...], ...] = (
    ((0.08, 0.25, 0.48, 0.95), (0.3, 0.0, 0.72, 0.8), (0.55, 0.25, 0.95, 0.95)),
    (
        (0.05, 0.35, 0.4, 0.95),
        (0.22, 0.08, 0.58, 0.75),
        (0.5, 0.0, 0.8, 0.7),
        (0.65, 0.3, 0.98, 0.95),
    ),
    ((0.1, 0.2, 0.55, 0.9), (0.42, 0.1, 0.9, 0.92)),
)


def _draw_cloud(canvas: Surface, element: Element) -> None:
    colour, shadow = element.colours[:2]
    canvas.ellipse(_rel(element.box, 0.0, 0.5, 1.0, 1.06), shadow)
    for puff in _CLOUD_PUFFS[element.style % len(_CLOUD_PUFFS)]:
        canvas.ellipse(_rel(element.box, *puff), colour)
    canvas.ellipse(_rel(element.box, 0.02, 0.45, 0.98, 1.0), colour)


def _draw_bird(canvas: Surface, element: Element) -> None:
    x0, y0, x1, y1 = element.box
    cx = (x0 + x1) / 2
    wing = [(x0, y0), (cx - (x1 - x0) * 0.18, y0 + (y1 - y0) * 0.35), (cx, y1)]
    canvas.line(wing, element.colours[0], element.size)
    canvas.line([(2 * cx - x, y) for x, y in wing], element.colours[0], element.size)


def _draw_mountains(canvas: Surface, element: Element) -> None:
    canvas.polygon(element.points, element.colours[0])
    if element.style != 1:
        return
    ridge = element.points[:-2]
    for index in range(1, len(ridge) - 1, 2):
        (lx, ly), (px, py), (rx, ry) = ridge[index - 1], ridge[index], ridge[index + 1]
        depth = 0.26
        left = (px + (lx - px) * depth, py + (ly - py) * depth)
        right = (px + (rx - px) * depth, py + (ry - py) * depth)
        notch = ((left[0] + right[0]) / 2, min(left[1], right[1]) - (ly - py) * 0.04)
        canvas.polygon([(px, py), right, notch, left], element.colours[1])


def _draw_sea(canvas: _Canvas, element: Element) -> None:
    x0, top, x1, bottom = element.box
    canvas.paste(gradient((x1 - x0, bottom - top), element.colours[:2]), (x0, top))
    draw_waves(canvas, element)


def draw_waves(surface: Surface, element: Element) -> None:
    """The sea's wave strokes, longer and thicker toward the viewer."""
    _, top, _, bottom = element.box
    depth = max(1, bottom - top)
    for x, y in element.points:
        near = (y - top) / depth
        half = element.size * (0.4 + near)
        width = max(1, round(element.size * (0.05 + near * 0.12)))
        surface.line([(x - half, y), (x + half, y)], element.colours[2], width)


def _draw_boat(canvas: Surface, element: Element) -> None:
    hull, sail = element.colours[:2]
    box = element.box
    width = box[2] - box[0]
    canvas.polygon(
        [_at(box, 0.0, 0.72), _at(box, 1.0, 0.72), _at(box, 0.82, 1.0), _at(box, 0.18, 1.0)], hull
    )
    canvas.line([_at(box, 0.5, 0.05), _at(box, 0.5, 0.74)], (70, 50, 40), max(1, width // 40))
    canvas.polygon([_at(box, 0.53, 0.08), _at(box, 0.53, 0.66), _at(box, 0.92, 0.66)], sail)
    canvas.polygon(
        [_at(box, 0.47, 0.2), _at(box, 0.47, 0.66), _at(box, 0.16, 0.66)], mix(sail, _BLACK, 0.08)
    )


def _at(box: Box, fx: float, fy: float) -> tuple[float, float]:
    return box[0] + fx * (box[2] - box[0]), box[1] + fy * (box[3] - box[1])


def _draw_tree(canvas: Surface, element: Element) -> None:
    green, trunk = element.colours[:2]
    box = element.box
    if element.style == 1:
        canvas.rectangle(_rel(box, 0.43, 0.75, 0.57, 1.0), trunk)
        for top, bottom, spread in ((0.0, 0.42, 0.32), (0.18, 0.62, 0.42), (0.36, 0.82, 0.5)):
            points = [
                _at(box, 0.5, top),
                _at(box, 0.5 + spread, bottom),
                _at(box, 0.5 - spread, bottom),
            ]
            canvas.polygon(points, green)
        return
    canvas.rectangle(_rel(box, 0.42, 0.5, 0.58, 1.0), trunk)
    canvas.ellipse(_rel(box, 0.0, 0.0, 1.0, 0.68), green)
    canvas.ellipse(_rel(box, 0.2, 0.08, 0.62, 0.4), mix(green, _WHITE, 0.14), 160)


def _draw_house(canvas: Surface, element: Element) -> None:
    wall, roof, door, window = element.colours[:4]
    box = element.box
    canvas.rectangle(_rel(box, 0.66, 0.05, 0.8, 0.35), mix(roof, _BLACK, 0.2))
    canvas.rectangle(_rel(box, 0.04, 0.42, 0.96, 1.0), wall)
    canvas.polygon([_at(box, -0.04, 0.45), _at(box, 0.5, 0.0), _at(box, 1.04, 0.45)], roof)
    canvas.rectangle(_rel(box, 0.41, 0.66, 0.59, 1.0), door)
    frame = mix(wall, _BLACK, 0.35)
    for x0 in (0.13, 0.69):
        canvas.rectangle(_rel(box, x0 - 0.02, 0.56, x0 + 0.2, 0.8), frame)
        canvas.rectangle(_rel(box, x0, 0.58, x0 + 0.18, 0.78), window)


def _draw_flower(canvas: Surface, element: Element) -> None:
    petals, heart, stem = element.colours[:3]
    x0, y0, x1, y1 = element.box
    radius = (x1 - x0) / 2
    cx, cy = x0 + radius, y0 + radius
    canvas.line([(cx, cy), (cx, y1)], stem, max(2, round(radius / 5)))
    canvas.ellipse((cx, y1 - radius * 1.6, cx + radius * 1.1, y1 - radius * 1.1), stem)
    for index in range(6):
        angle = index * math.pi / 3
        px, py = cx + radius * 0.55 * math.cos(angle), cy + radius * 0.55 * math.sin(angle)
        canvas.ellipse(
            (px - radius * 0.45, py - radius * 0.45, px + radius * 0.45, py + radius * 0.45), petals
        )
    canvas.ellipse(
        (cx - radius * 0.35, cy - radius * 0.35, cx + radius * 0.35, cy + radius * 0.35), heart
    )


def _outline(element: Element) -> int:
    return max(2, (element.box[2] - element.box[0]) // 36)


def _draw_circle(canvas: Surface, element: Element) -> None:
    canvas.ellipse(element.box, element.colours[1])
    edge = _outline(element)
    x0, y0, x1, y1 = element.box
    canvas.ellipse((x0 + edge, y0 + edge, x1 - edge, y1 - edge), element.colours[0])


def _draw_square(canvas: Surface, element: Element) -> None:
    edge = _outline(element)
    x0, y0, x1, y1 = element.box
    canvas.rectangle(element.box, element.colours[1], radius=edge * 2)
    canvas.rectangle((x0 + edge, y0 + edge, x1 - edge, y1 - edge), element.colours[0], radius=edge)


def _draw_triangle(canvas: Surface, element: Element) -> None:
    box = element.box
    canvas.polygon(
        [_at(box, 0.5, 0.02), _at(box, 1.0, 0.92), _at(box, 0.0, 0.92)], element.colours[1]
    )
    canvas.polygon(
        [_at(box, 0.5, 0.1), _at(box, 0.94, 0.88), _at(box, 0.06, 0.88)], element.colours[0]
    )


def _heart_points(box: Sequence[float]) -> list[tuple[float, float]]:
    """The classic parametric heart curve, scaled into ``box``."""
    x0, y0, x1, y1 = box
    points = []
    for index in range(48):
        t = index / 48 * 2 * math.pi
        hx = 16 * math.sin(t) ** 3
        hy = 13 * math.cos(t) - 5 * math.cos(2 * t) - 2 * math.cos(3 * t) - math.cos(4 * t)
        points.append((x0 + (hx + 17) / 34 * (x1 - x0), y0 + (13 - hy) / 30 * (y1 - y0)))
    return points


def _draw_heart(canvas: Surface, element: Element) -> None:
    edge = _outline(element)
    x0, y0, x1, y1 = element.box
    canvas.polygon(_heart_points(element.box), element.colours[1])
    canvas.polygon(
        _heart_points((x0 + edge, y0 + edge, x1 - edge, y1 - edge * 1.5)), element.colours[0]
    )


def _draw_orb(canvas: Surface, element: Element) -> None:
    canvas.ellipse(element.box, element.colours[0], element.alpha)


def _draw_ring(canvas: Surface, element: Element) -> None:
    width = max(2, (element.box[2] - element.box[0]) // 9)
    canvas.ring(element.box, element.colours[0], width, element.alpha)


def _draw_pill(canvas: Surface, element: Element) -> None:
    x0, y0, x1, y1 = element.box
    thickness = (y1 - y0) * 0.36
    middle = (y0 + y1) / 2
    box = (x0, middle - thickness / 2, x1, middle + thickness / 2)
    canvas.rectangle(box, element.colours[0], radius=thickness / 2, alpha=element.alpha)


def _draw_text(canvas: _Canvas, element: Element) -> None:
    x0, y0, x1, y1 = element.box
    text, font, size = fit_text(element.text, x1 - x0, y1 - y0)
    centre = ((x0 + x1) // 2, (y0 + y1) // 2)
    stroke = max(1, size // 14)
    if not canvas.transparent:
        left, top, right, bottom = canvas.pen.multiline_textbbox(
            centre, text, font=font, anchor="mm", align="center", stroke_width=stroke
        )
        pad = size * 0.4
        canvas.rectangle((left - pad, top - pad, right + pad, bottom + pad), (16, 18, 30), pad, 120)
    canvas.text(centre, text, font, stroke)


def fit_text(text: str, width: int, height: int) -> tuple[str, _Font, int]:
    """Wrap and shrink ``text`` until it fits ``width`` × ``height`` (or the font is tiny)."""
    size = max(8, round(height * 0.6))
    while True:
        font = ImageFont.load_default(size=size)
        lines = _wrap(text, font, width)
        fits = len(lines) * size * 1.2 <= height and all(
            font.getlength(ln) <= width for ln in lines
        )
        if fits or size <= 8:
            return "\n".join(lines), font, size
        size = max(8, int(size * 0.86))


def _wrap(text: str, font: _Font, width: int) -> list[str]:
    lines: list[str] = []
    for word in text.split():
        candidate = f"{lines[-1]} {word}" if lines else word
        if lines and font.getlength(candidate) <= width:
            lines[-1] = candidate
        else:
            lines.append(word)
    return lines or [text]


SHAPE_DRAWERS: dict[str, Callable[[Surface, Element], None]] = {
    "polygon": _draw_polygon,
    "ellipse": _draw_ellipse,
    "sun": _draw_sun,
    "stars": _draw_stars,
    "star": _draw_star,
    "rainbow": _draw_rainbow,
    "cloud": _draw_cloud,
    "bird": _draw_bird,
    "mountains": _draw_mountains,
    "boat": _draw_boat,
    "tree": _draw_tree,
    "house": _draw_house,
    "flower": _draw_flower,
    "circle": _draw_circle,
    "square": _draw_square,
    "triangle": _draw_triangle,
    "heart": _draw_heart,
    "orb": _draw_orb,
    "ring": _draw_ring,
    "pill": _draw_pill,
}
"""The drawers that need nothing but :class:`Surface` shapes, shared with :mod:`.svg`."""

_DRAWERS: dict[str, Callable[[_Canvas, Element], None]] = {
    **SHAPE_DRAWERS,
    "gradient": _draw_gradient,
    "corners": _draw_corners,
    "sea": _draw_sea,
    "moon": _draw_moon,
    "text": _draw_text,
}
