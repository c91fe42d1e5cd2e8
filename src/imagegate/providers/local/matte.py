"""Background removal and replacement: a matte estimated from the picture's border.

The background is taken to be what looks like the border and touches it. The border ring's
dominant colours (each covering at least a fifth of it) are the background colours; every
pixel's distance to the nearest of them (the largest channel difference) gives a soft alpha,
0 up to a tolerance learnt from how much the ring itself varies, then ramping to 255. Only
background-coloured areas connected to the border count: they are grown from the ring on a
reduced copy (a flood fill made of 3×3 max filters), so a white shirt inside a portrait on
white stays. A one-pixel box blur (more on large pictures) softens the matte's edge, and the
input's own alpha is kept where it is lower.

It is a heuristic, not segmentation: it works for subjects on plain or simply graded
backgrounds (product shots, drawings, renders) and removes too much or too little on busy
photographs whose border looks like the subject.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from PIL import Image, ImageChops, ImageDraw, ImageFilter, ImageOps

from imagegate.providers.local.draw import Rendered, render_scene
from imagegate.providers.local.inputs import blend_stages, flatten
from imagegate.providers.local.scene import RGB, Scene

__all__ = ["matte", "render_cutout", "render_new_backdrop"]

_WORK_SIDE = 192
"""The border colours and the connectivity are worked out at about this longer side."""
_RING = 48
"""The border ring is the longer side over this, at least one pixel."""
_SHARE = 0.2
_TOLERANCE = (16, 72)
"""Bounds of the distance below which a pixel is fully background."""
_MARGIN = 12
"""Added to the ring's own 95th-percentile distance to get the tolerance."""
_SOFT = 48
"""Width of the alpha ramp above the tolerance, in distance levels."""
_FEATHER_SIDE = 1024
"""The matte is box-blurred by the shorter side over this (at least a pixel): a soft edge."""


def render_cutout(base: Image.Image, stages: int = 0) -> Rendered:
    """``base`` (RGBA) with alpha 0 on its background (see the module)."""
    final = base.copy()
    final.putalpha(matte(base))
    return Rendered(final, blend_stages(base, final, stages))


def render_new_backdrop(
    base: Image.Image, scene: Scene, rng: random.Random, stages: int = 0
) -> Rendered:
    """``base`` (RGBA)'s subject composited over ``scene`` drawn at its size (opaque)."""
    subject = base.copy()
    subject.putalpha(matte(base))
    backdrop = render_scene(scene, *base.size, rng, transparent=False).final.convert("RGBA")
    final = Image.alpha_composite(backdrop, subject)
    return Rendered(final, blend_stages(flatten(base), final, stages))


def matte(image: Image.Image) -> Image.Image:
    """The alpha (``L``) that keeps ``image`` (RGBA)'s subject and drops its background."""
    rgb = flatten(image).convert("RGB")
    factor = max(1, max(rgb.size) // _WORK_SIDE)
    small = rgb.reduce(factor) if factor > 1 else rgb
    ring = _ring(small)
    colours = _border_colours(ring)
    tolerance = _tolerance(_distance(ring, colours))
    soft = _distance(rgb, colours).point(_ramp(tolerance))
    connected = _connected(_distance(small, colours), tolerance + _SOFT // 2)
    region = connected.filter(ImageFilter.MaxFilter(3)).resize(rgb.size, Image.Resampling.BILINEAR)
    background = region.point(lambda value: 255 if value else 0)
    alpha = ImageChops.lighter(soft, ImageOps.invert(background))
    alpha = alpha.filter(ImageFilter.BoxBlur(max(1, round(min(rgb.size) / _FEATHER_SIDE))))
    return ImageChops.darker(alpha, image.getchannel("A"))


def _ring(image: Image.Image) -> Image.Image:
    """The pixels of ``image``'s border ring, as one strip."""
    width, height = image.size
    band = max(1, max(width, height) // _RING)
    pieces = [
        image.crop((0, 0, width, band)),
        image.crop((0, height - band, width, height)),
        image.crop((0, band, band, height - band)).rotate(90, expand=True),
        image.crop((width - band, band, width, height - band)).rotate(90, expand=True),
    ]
    pieces = [piece for piece in pieces if piece.width and piece.height]
    data = b"".join(piece.tobytes() for piece in pieces)
    return Image.frombytes(image.mode, (len(data) // len(image.getbands()), 1), data)


def _border_colours(ring: Image.Image) -> list[RGB]:
    quantised = ring.quantize(3, method=Image.Quantize.MEDIANCUT)
    flat = quantised.getpalette() or []
    counts = sorted(
        (count, index) for count, index in quantised.getcolors() or [] if isinstance(index, int)
    )
    total = ring.width * ring.height
    common = [index for count, index in counts if count >= _SHARE * total] or [counts[-1][1]]
    return [(flat[3 * i], flat[3 * i + 1], flat[3 * i + 2]) for i in common]


def _distance(image: Image.Image, colours: Sequence[RGB]) -> Image.Image:
    """Per pixel, the largest channel difference to the nearest of ``colours`` (``L``)."""
    nearest = Image.new("L", image.size, 255)
    for colour in colours:
        red, green, blue = ImageChops.difference(
            image, Image.new("RGB", image.size, colour)
        ).split()
        nearest = ImageChops.darker(
            nearest, ImageChops.lighter(ImageChops.lighter(red, green), blue)
        )
    return nearest


def _tolerance(ring_distance: Image.Image) -> int:
    histogram = ring_distance.histogram()
    wanted, seen = 0.95 * sum(histogram), 0
    for level, amount in enumerate(histogram):
        seen += amount
        if seen >= wanted:
            return max(_TOLERANCE[0], min(_TOLERANCE[1], level + _MARGIN))
    return _TOLERANCE[1]


def _ramp(tolerance: int) -> list[int]:
    return [max(0, min(255, round((level - tolerance) * 255 / _SOFT))) for level in range(256)]


def _connected(distance: Image.Image, limit: int) -> Image.Image:
    """255 where ``distance`` stays below ``limit`` along a path from the image's edge."""
    candidate = distance.point(lambda value: 255 if value < limit else 0)
    frame = Image.new("L", distance.size, 255)
    ImageDraw.Draw(frame).rectangle((1, 1, distance.width - 2, distance.height - 2), fill=0)
    grown = ImageChops.darker(candidate, frame)
    for _ in range(2 * sum(distance.size)):
        wider = ImageChops.darker(grown.filter(ImageFilter.MaxFilter(3)), candidate)
        if ImageChops.difference(wider, grown).getbbox() is None:
            break
        grown = wider
    return grown
