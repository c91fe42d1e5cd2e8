"""Upscaling: ``images[0]`` enlarged to the output size, faithfully or with added detail.

The input is sharpened with a light unsharp mask and then enlarged with Lanczos (bicubic
beyond 2×, where it looks the same and is faster). Sharpening before enlarging gives the same
edges as sharpening after, with a proportionally wider radius, at a fraction of the cost
(the blur runs on the small image). ``strength`` 0 stops there ("subtle"). A positive
strength ("creative") sharpens harder and adds procedural grain, two octaves of seeded noise
(pixel sized and enlargement sized), whose amplitude grows with the strength. The grain
averages out when the result is scaled back down, so the picture stays the input's. The
input's alpha is enlarged with it and never sharpened; an opaque input is worked on in RGB.
"""

from __future__ import annotations

import random

from PIL import Image, ImageChops, ImageFilter

from imagegate.providers.local.draw import Rendered
from imagegate.providers.local.inputs import blend_stages

__all__ = ["render_upscale"]

_RADIUS = 1.0
"""Unsharp-mask radius on the input, before enlarging."""
_SHARPEN = 55
"""Unsharp-mask percent at strength 0."""
_SHARPEN_CREATIVE = 110
"""Extra percent at strength 1."""
_GRAIN = 16
"""Noise amplitude (grey levels either way) at strength 1."""
_TILE = 256
"""Noise is drawn as a tile this size and repeated; pixel-sized grain hides the repeat."""


def render_upscale(
    source: Image.Image,
    size: tuple[int, int],
    strength: float,
    rng: random.Random,
    stages: int = 0,
) -> Rendered:
    """``source`` (RGBA) enlarged to ``size``; ``strength`` 0–1 adds detail (see the module).

    Previews go from a plain bilinear enlargement toward the result.
    """
    strength = min(1.0, max(0.0, strength))
    factor = max(1.0, min(size[0] / source.width, size[1] / source.height))
    resample = Image.Resampling.LANCZOS if factor <= 2 else Image.Resampling.BICUBIC
    sharpened = source.convert("RGB").filter(
        ImageFilter.UnsharpMask(
            radius=_RADIUS, percent=round(_SHARPEN + _SHARPEN_CREATIVE * strength), threshold=2
        )
    )
    final = sharpened.resize(size, resample)
    if strength > 0:
        final = _grain(final, strength, factor, rng)
    alpha = source.getchannel("A")
    if alpha.getextrema() != (255, 255):
        final.putalpha(alpha.resize(size, resample))
    start = source.resize(size, Image.Resampling.BILINEAR).convert(final.mode) if stages else final
    return Rendered(final, blend_stages(start, final, stages))


def _grain(image: Image.Image, strength: float, factor: float, rng: random.Random) -> Image.Image:
    """``image`` (RGB) with luminance grain of amplitude proportional to ``strength``."""
    amplitude = _GRAIN * strength
    fine = _noise(rng, _TILE, amplitude * 0.6)
    side = max(2, round(_TILE / factor))
    coarse = _noise(rng, side, amplitude * 0.6).resize((_TILE, _TILE), Image.Resampling.BICUBIC)
    grey = ImageChops.add(fine, coarse, 1.0, -128)
    tile = Image.merge("RGB", (grey, grey, grey))
    return ImageChops.add(image, _tiled(tile, image.size), 1.0, -128)


def _noise(rng: random.Random, side: int, amplitude: float) -> Image.Image:
    """A ``side``-square ``L`` tile of uniform noise around 128, ``amplitude`` either way."""
    tile = Image.frombytes("L", (side, side), rng.randbytes(side * side))
    return tile.point([round(128 + (value - 127.5) / 127.5 * amplitude) for value in range(256)])


def _tiled(tile: Image.Image, size: tuple[int, int]) -> Image.Image:
    canvas = Image.new(tile.mode, size)
    for top in range(0, size[1], tile.height):
        for left in range(0, size[0], tile.width):
            canvas.paste(tile, (left, top))
    return canvas
