"""Small WebP renditions of stored images (the console gallery's thumbnails)."""

from __future__ import annotations

import io

from PIL import Image, ImageOps

THUMBNAIL_EDGE = 320
"""Longest edge in pixels: sharp at a ~160 px grid cell on a 2x screen."""
WEBP_QUALITY = 72


def thumbnail_webp(data: bytes, edge: int = THUMBNAIL_EDGE) -> bytes:
    """``data`` (any format Pillow reads) scaled to fit ``edge`` and encoded as WebP; an SVG or
    anything else Pillow cannot read raises ``PIL.UnidentifiedImageError``."""
    with Image.open(io.BytesIO(data)) as source:
        image = ImageOps.exif_transpose(source)
        image.draft("RGB", (edge, edge))
        image.thumbnail((edge, edge), Image.Resampling.LANCZOS)
        if image.mode not in ("RGB", "RGBA"):
            image = image.convert("RGBA" if "A" in image.getbands() else "RGB")
        out = io.BytesIO()
        image.save(out, "WEBP", quality=WEBP_QUALITY, method=4)
    return out.getvalue()
