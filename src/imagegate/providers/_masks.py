"""Mask conversions: the domain's mask (an RGBA PNG whose alpha 0 marks the area to change) in
each upstream's own convention.

Boundary: pure functions over bytes (Pillow); no I/O.
"""

from __future__ import annotations

import io
from typing import Literal

from PIL import Image

from imagegate.core.requests import InputImage

__all__ = ["black_and_white", "with_mask_alpha"]


def black_and_white(mask: InputImage, change: Literal["white", "black"]) -> bytes:
    """A greyscale PNG of the mask's size: the area to change ``change``, the rest the other."""
    with Image.open(io.BytesIO(mask.data)) as opened:
        alpha = opened.convert("RGBA").getchannel("A")
    edit, keep = (255, 0) if change == "white" else (0, 255)
    converted = alpha.point(lambda value: edit if value == 0 else keep)
    buffer = io.BytesIO()
    converted.save(buffer, "PNG")
    return buffer.getvalue()


def with_mask_alpha(image: InputImage, mask: InputImage) -> bytes:
    """``image`` as an RGBA PNG carrying the mask's alpha (transparent where it is to change)."""
    with Image.open(io.BytesIO(image.data)) as opened, Image.open(io.BytesIO(mask.data)) as m:
        rgba = opened.convert("RGBA")
        alpha = m.convert("RGBA").getchannel("A")
    if alpha.size != rgba.size:
        alpha = alpha.resize(rgba.size, Image.Resampling.NEAREST)
    rgba.putalpha(alpha.point(lambda value: 0 if value == 0 else 255))
    buffer = io.BytesIO()
    rgba.save(buffer, "PNG")
    return buffer.getvalue()
