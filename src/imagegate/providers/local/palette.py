"""Colours of input images: their dominant palette, snapping to a palette, toning toward one."""

from __future__ import annotations

from collections.abc import Sequence

from PIL import Image

from imagegate.providers.local.draw import gradient
from imagegate.providers.local.scene import RGB

__all__ = ["dominant_colours", "posterise", "tone"]

_SAMPLE = 48
_OPAQUE = 128


def dominant_colours(image: Image.Image, count: int) -> list[RGB]:
    """Up to ``count`` colours covering most of ``image``, most common first.

    Only pixels at least half opaque count, so what lies under transparency does not leak in.
    An image with no such pixel gives mid grey.
    """
    size = (min(_SAMPLE, image.width), min(_SAMPLE, image.height))
    # Sampling the bands apart skips Pillow's premultiplied RGBA resize of the full image.
    sample = image.convert("RGB").resize(size, Image.Resampling.BOX).convert("RGBA")
    if "A" in image.getbands():
        sample.putalpha(image.getchannel("A").resize(size, Image.Resampling.BOX))
    raw = sample.tobytes()
    kept = b"".join(raw[i : i + 3] for i in range(0, len(raw), 4) if raw[i + 3] >= _OPAQUE)
    if not kept:
        return [(128, 128, 128)]
    strip = Image.frombytes("RGB", (len(kept) // 3, 1), kept)
    quantised = strip.quantize(count, method=Image.Quantize.MEDIANCUT)
    flat = quantised.getpalette() or []
    counts = [
        (pixels, index) for pixels, index in quantised.getcolors() or [] if isinstance(index, int)
    ]
    return [
        (flat[3 * i], flat[3 * i + 1], flat[3 * i + 2]) for _, i in sorted(counts, key=_commonest)
    ]


def _commonest(item: tuple[int, int]) -> tuple[int, int]:
    return -item[0], item[1]


def posterise(image: Image.Image, colours: Sequence[RGB]) -> Image.Image:
    """``image`` (RGB) with every pixel snapped to the nearest of ``colours``."""
    palette = Image.new("P", (1, 1))
    palette.putpalette([channel for colour in colours for channel in colour])
    return image.quantize(palette=palette, dither=Image.Dither.NONE).convert("RGB")


def tone(image: Image.Image, colours: Sequence[RGB], amount: float) -> Image.Image:
    """``image`` moved ``amount`` of the way toward a vertical gradient through ``colours``.

    The mode of ``image`` is kept; alpha is left as it was.
    """
    if not colours or amount <= 0:
        return image
    wash = gradient(image.size, colours).convert(image.mode)
    if image.mode == "RGBA":
        wash.putalpha(image.getchannel("A"))
    return Image.blend(image, wash, amount)
