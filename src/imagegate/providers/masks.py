"""Masks in the upstreams' conventions.

Boundary: pure image conversion, no I/O. The domain mask (:attr:`ImageRequest.mask`) is an
RGBA PNG whose alpha 0 marks the area to change; Bria and Stability take a greyscale mask
where white marks the area to change and black keeps the pixels.
"""

from __future__ import annotations

import io

from PIL import Image

from imagegate.core.requests import InputImage

__all__ = ["white_marks_edit"]


def white_marks_edit(mask: InputImage) -> bytes:
    """``mask`` as a greyscale PNG: white (255) where the domain mask's alpha is below half."""
    with Image.open(io.BytesIO(mask.data)) as opened:
        alpha = opened.convert("RGBA").getchannel("A")
    converted = alpha.point(lambda value: 255 if value < 128 else 0)
    buffer = io.BytesIO()
    converted.save(buffer, "PNG", compress_level=1)
    return buffer.getvalue()
