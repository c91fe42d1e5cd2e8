"""Small real images for the fakes: valid PNG/JPEG/WebP of any size, cached by shape.

Boundary: bytes only. Each image is a flat colour with a band, so it encodes fast and decodes
to exactly the size asked for. :func:`noise_png` makes a PNG of about a given byte size
(random pixels do not compress), for benchmarks that need realistic payloads.
"""

from __future__ import annotations

import functools
import io
import os
import struct
import zlib

from PIL import Image, ImageDraw

__all__ = ["MIME", "image_bytes", "noise_png"]

MIME = {"png": "image/png", "jpeg": "image/jpeg", "webp": "image/webp"}
_PIL = {"png": "PNG", "jpeg": "JPEG", "webp": "WEBP"}


@functools.lru_cache(maxsize=64)
def image_bytes(width: int, height: int, fmt: str = "png", colour: int = 0) -> bytes:
    """A ``width``×``height`` image in ``fmt`` (``png``/``jpeg``/``webp``)."""
    palette = [(70, 130, 180), (220, 120, 60), (90, 160, 90), (150, 90, 170)]
    image = Image.new("RGB", (width, height), palette[colour % len(palette)])
    ImageDraw.Draw(image).rectangle((0, height // 3, width, height // 2), fill=(250, 250, 240))
    buffer = io.BytesIO()
    options = {"compress_level": 1} if fmt == "png" else {"quality": 80}
    image.save(buffer, _PIL[fmt], **options)
    return buffer.getvalue()


@functools.lru_cache(maxsize=8)
def noise_png(target_bytes: int) -> bytes:
    """A valid RGB PNG of about ``target_bytes`` bytes (stored, uncompressed noise)."""
    side = max(8, int((target_bytes / 3) ** 0.5))
    raw = b"".join(b"\x00" + os.urandom(side * 3) for _ in range(side))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data))
            + kind
            + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
        )

    header = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw, 0))
        + chunk(b"IEND", b"")
    )
