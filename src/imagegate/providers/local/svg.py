"""SVG output: the renderer's own composition written as vector shapes instead of pixels.

:func:`render_svg` lays the prompt out exactly as :func:`~.draw.render` does (same seed, same
:func:`~.layout.compose`) and hands every element to the same shape drawers
(:data:`~.draw.SHAPE_DRAWERS`), here drawing onto :class:`_Svg`, which writes ``<ellipse>``,
``<polygon>``, ``<rect>``, ``<polyline>`` and ``<path>`` elements. The elements Pillow draws by
pasting pixels get their own vector form: backdrop gradients as ``<linearGradient>`` fills,
the four-corner backdrop as two gradients blended through a ``<mask>``, the sea as a gradient
under its wave strokes, the crescent moon as a masked disc, quoted text as ``<text>`` on its
translucent plate. A transparent request leaves the backdrop out, as the raster does.

The document is SVG 1.1 with ``width``, ``height`` and ``viewBox`` set; coordinates are
rounded to two decimals, ids are numbered in drawing order, and nothing depends on the clock,
so the same request always gives the same bytes. Text is drawn in the browser's sans-serif
font, so its width may differ slightly from the raster's.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from xml.sax.saxutils import escape

from PIL import Image, ImageDraw

from imagegate.providers.local.draw import (
    SHAPE_DRAWERS,
    draw_full_moon,
    draw_waves,
    fit_text,
    render_seed,
    stage_cuts,
)
from imagegate.providers.local.layout import Element, compose
from imagegate.providers.local.scene import RGB, parse_prompt

__all__ = ["SVG_NAMESPACE", "Vector", "render_svg"]

SVG_NAMESPACE = "http://www.w3.org/2000/svg"
_FONT = "Aileron, 'DejaVu Sans', Helvetica, Arial, sans-serif"
_TEXT_PLATE: RGB = (16, 18, 30)
_TEXT_STROKE: RGB = (24, 24, 32)
_LINE_GAP = 4
"""Pillow's default extra spacing between lines of multiline text."""
# Characters XML 1.0 forbids even escaped (control characters other than tab and newlines).
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


@dataclass(frozen=True, slots=True)
class Vector:
    """The finished SVG document and ``stages`` partial documents, earliest first."""

    final: bytes
    stages: list[bytes]


def render_svg(
    prompt: str,
    width: int,
    height: int,
    *,
    seed: int,
    variant: int,
    transparent: bool,
    stages: int = 0,
) -> Vector:
    """``prompt`` drawn as an SVG document of ``width`` × ``height``; see the module.

    ``stages`` partial documents hold the first 1/(stages+1), 2/(stages+1), … of the elements.
    """
    rng = random.Random(render_seed(prompt, width, height, seed, variant))
    layout = compose(parse_prompt(prompt), width, height, rng)
    elements = [e for e in layout.elements if not (transparent and e.backdrop)]
    cuts = stage_cuts(len(elements), stages)
    return Vector(
        final=_document(elements, width, height, transparent),
        stages=[_document(elements[:cut], width, height, transparent) for cut in cuts],
    )


def _document(elements: Sequence[Element], width: int, height: int, transparent: bool) -> bytes:
    svg = _Svg(transparent)
    for element in elements:
        _SVG_DRAWERS[element.kind](svg, element)
    return svg.document(width, height)


def _num(value: float) -> str:
    text = f"{value:.2f}".rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


def _hex(colour: RGB) -> str:
    return "#{:02x}{:02x}{:02x}".format(*colour)


def _points(points: Sequence[tuple[float, float]]) -> str:
    return " ".join(f"{_num(x)},{_num(y)}" for x, y in points)


class _Svg:
    """A :class:`~.draw.Surface` that collects SVG markup."""

    def __init__(self, transparent: bool) -> None:
        self._transparent = transparent
        self.defs: list[str] = []
        self.body: list[str] = []

    @property
    def transparent(self) -> bool:
        return self._transparent

    def new_id(self, prefix: str) -> str:
        return f"{prefix}{len(self.defs)}"

    def paint(self, colour: RGB, alpha: int = 255, attribute: str = "fill") -> str:
        # As on the raster canvas, translucency is dropped when there is no backdrop under it.
        text = f'{attribute}="{_hex(colour)}"'
        if alpha < 255 and not self._transparent:
            text += f' {attribute}-opacity="{_num(alpha / 255)}"'
        return text

    def ellipse(self, box: Sequence[float], colour: RGB, alpha: int = 255) -> None:
        x0, y0, x1, y1 = box
        self.body.append(
            f'<ellipse cx="{_num((x0 + x1) / 2)}" cy="{_num((y0 + y1) / 2)}" '
            f'rx="{_num((x1 - x0) / 2)}" ry="{_num((y1 - y0) / 2)}" {self.paint(colour, alpha)}/>'
        )

    def ring(self, box: Sequence[float], colour: RGB, width: int, alpha: int = 255) -> None:
        x0, y0, x1, y1 = box
        self.body.append(
            f'<ellipse cx="{_num((x0 + x1) / 2)}" cy="{_num((y0 + y1) / 2)}" '
            f'rx="{_num((x1 - x0 - width) / 2)}" ry="{_num((y1 - y0 - width) / 2)}" fill="none" '
            f'{self.paint(colour, alpha, "stroke")} stroke-width="{width}"/>'
        )

    def polygon(self, points: Sequence[tuple[float, float]], colour: RGB, alpha: int = 255) -> None:
        self.body.append(f'<polygon points="{_points(points)}" {self.paint(colour, alpha)}/>')

    def rectangle(
        self, box: Sequence[float], colour: RGB, radius: float = 0, alpha: int = 255
    ) -> None:
        self.body.append(self.rect_markup(box, self.paint(colour, alpha), radius))

    def line(self, points: Sequence[tuple[float, float]], colour: RGB, width: int) -> None:
        self.body.append(
            f'<polyline points="{_points(points)}" fill="none" {self.paint(colour, 255, "stroke")} '
            f'stroke-width="{width}" stroke-linecap="round" stroke-linejoin="round"/>'
        )

    def arc(self, box: Sequence[float], colour: RGB, width: int) -> None:
        x0, y0, x1, y1 = box
        rx, ry = (x1 - x0 - width) / 2, (y1 - y0 - width) / 2
        cy = (y0 + y1) / 2
        self.body.append(
            f'<path d="M{_num(x0 + width / 2)},{_num(cy)} A{_num(rx)},{_num(ry)} 0 0 1 '
            f'{_num(x1 - width / 2)},{_num(cy)}" fill="none" {self.paint(colour, 255, "stroke")} '
            f'stroke-width="{width}"/>'
        )

    def gradient(self, stops: Sequence[RGB], horizontal: bool = False) -> str:
        """Define a linear gradient through evenly spaced ``stops``; return its ``url(#…)``."""
        ident = self.new_id("g")
        end = 'x2="1" y2="0"' if horizontal else 'x2="0" y2="1"'
        last = max(1, len(stops) - 1)
        marks = "".join(
            f'<stop offset="{_num(index / last)}" stop-color="{_hex(colour)}"/>'
            for index, colour in enumerate(stops)
        )
        self.defs.append(
            f'<linearGradient id="{ident}" x1="0" y1="0" {end}>{marks}</linearGradient>'
        )
        return f"url(#{ident})"

    def mask(self, content: str) -> str:
        """Define a luminance mask drawn by ``content``; return its ``url(#…)``."""
        ident = self.new_id("m")
        self.defs.append(f'<mask id="{ident}">{content}</mask>')
        return f"url(#{ident})"

    @staticmethod
    def rect_markup(box: Sequence[float], fill: str, radius: float = 0, extra: str = "") -> str:
        x0, y0, x1, y1 = box
        rounded = f' rx="{_num(radius)}"' if radius else ""
        return (
            f'<rect x="{_num(x0)}" y="{_num(y0)}" width="{_num(x1 - x0)}" '
            f'height="{_num(y1 - y0)}"{rounded} {fill}{extra}/>'
        )

    def document(self, width: int, height: int) -> bytes:
        defs = f"<defs>{''.join(self.defs)}</defs>\n" if self.defs else ""
        return (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            f'<svg xmlns="{SVG_NAMESPACE}" version="1.1" width="{width}" height="{height}" '
            f'viewBox="0 0 {width} {height}">\n{defs}' + "\n".join(self.body) + "\n</svg>\n"
        ).encode()


def _svg_gradient(svg: _Svg, element: Element) -> None:
    x0, y0, x1, y1 = element.box
    if x1 > x0 and y1 > y0:
        svg.body.append(svg.rect_markup(element.box, f'fill="{svg.gradient(element.colours)}"'))


def _svg_corners(svg: _Svg, element: Element) -> None:
    """Bilinear corners: the top edge's gradient, then the bottom edge's faded in downward."""
    top_left, top_right, bottom_left, bottom_right = element.colours[:4]
    svg.body.append(
        svg.rect_markup(element.box, f'fill="{svg.gradient((top_left, top_right), True)}"')
    )
    fade = svg.rect_markup(element.box, f'fill="{svg.gradient(((0, 0, 0), (255, 255, 255)))}"')
    bottom = f'fill="{svg.gradient((bottom_left, bottom_right), True)}"'
    svg.body.append(svg.rect_markup(element.box, bottom, extra=f' mask="{svg.mask(fade)}"'))


def _svg_sea(svg: _Svg, element: Element) -> None:
    svg.body.append(svg.rect_markup(element.box, f'fill="{svg.gradient(element.colours[:2])}"'))
    draw_waves(svg, element)


def _svg_moon(svg: _Svg, element: Element) -> None:
    if element.style != 0:
        draw_full_moon(svg, element)
        return
    x0, y0, x1, y1 = element.box
    width, height = x1 - x0, y1 - y0
    shift = width * 0.38
    cut = (x0 + shift, y0 - shift * 0.4, x1 + shift, y1 - shift * 0.4)
    disc, bite = _Svg(False), _Svg(False)
    disc.ellipse((x0, y0, x0 + width - 1, y0 + height - 1), (255, 255, 255))
    bite.ellipse(cut, (0, 0, 0))
    stencil = svg.mask(disc.body[0] + bite.body[0])
    body = _Svg(svg.transparent)
    body.ellipse((x0, y0, x0 + width - 1, y0 + height - 1), element.colours[0])
    svg.body.append(body.body[0].replace("/>", f' mask="{stencil}"/>'))


def _svg_text(svg: _Svg, element: Element) -> None:
    x0, y0, x1, y1 = element.box
    text, font, size = fit_text(element.text, x1 - x0, y1 - y0)
    centre = ((x0 + x1) // 2, (y0 + y1) // 2)
    stroke = max(1, size // 14)
    if not svg.transparent:
        left, top, right, bottom = ImageDraw.Draw(Image.new("L", (1, 1))).multiline_textbbox(
            centre, text, font=font, anchor="mm", align="center", stroke_width=stroke
        )
        pad = size * 0.4
        svg.rectangle((left - pad, top - pad, right + pad, bottom + pad), _TEXT_PLATE, pad, 120)
    lines = text.split("\n")
    step = font.getbbox("A", stroke_width=stroke)[3] + stroke + _LINE_GAP
    spans = "".join(
        f'<tspan x="{centre[0]}" y="{_num(centre[1] + (index - (len(lines) - 1) / 2) * step)}">'
        f"{escape(_NOT_XML.sub('', line))}</tspan>"
        for index, line in enumerate(lines)
    )
    svg.body.append(
        f'<text font-family="{_FONT}" font-size="{size}" text-anchor="middle" '
        f'dominant-baseline="central" fill="#ffffff" {svg.paint(_TEXT_STROKE, 255, "stroke")} '
        f'stroke-width="{2 * stroke}" stroke-linejoin="round" paint-order="stroke">{spans}</text>'
    )


_SVG_DRAWERS: dict[str, Callable[[_Svg, Element], None]] = {
    **SHAPE_DRAWERS,
    "gradient": _svg_gradient,
    "corners": _svg_corners,
    "sea": _svg_sea,
    "moon": _svg_moon,
    "text": _svg_text,
}
