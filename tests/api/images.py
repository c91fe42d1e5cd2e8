"""Image makers shared by the API tests (made in memory, never read from disk)."""

from __future__ import annotations

import io
import struct
import zlib

from PIL import Image


def png(size: tuple[int, int] = (256, 256), colour: tuple[int, ...] = (30, 120, 200)) -> bytes:
    """A PNG with a little structure, so edits and variations have something to keep."""
    mode = "RGBA" if len(colour) == 4 else "RGB"
    image = Image.new(mode, size, colour)
    width, height = size
    image.paste(
        (240, 200, 40)[: len(colour)] + ((255,) if mode == "RGBA" else ()),
        (0, 0, width // 3, height // 3),
    )
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def mask(size: tuple[int, int], hole: tuple[int, int, int, int]) -> bytes:
    """A PNG mask: opaque everywhere except ``hole`` (alpha 0 = the area to edit)."""
    image = Image.new("RGBA", size, (0, 0, 0, 255))
    image.paste((0, 0, 0, 0), hole)
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def bomb_png(width: int = 20000, height: int = 20000) -> bytes:
    """A tiny PNG whose header claims ``width``×``height`` pixels."""
    data = bytearray(png((1, 1)))
    ihdr = 8 + 8  # signature, then length + type of the IHDR chunk
    data[ihdr : ihdr + 8] = struct.pack(">II", width, height)
    crc = zlib.crc32(bytes(data[12 : ihdr + 13]))
    data[ihdr + 13 : ihdr + 17] = struct.pack(">I", crc)
    return bytes(data)
