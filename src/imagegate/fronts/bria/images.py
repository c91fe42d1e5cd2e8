"""Bria's image conventions turned into the domain's: masks (white = edit → alpha 0 = edit) and
``expand``'s canvas geometry (→ ``outpaint`` padding). Pillow work; call it in a thread.

Inputs here have already passed the safe image pipeline (format, size and pixel limits)."""

from __future__ import annotations

import io

from PIL import Image

from imagegate.errors import InvalidRequest

Box = tuple[int, int, int, int]
Padding = tuple[int, int, int, int]
_EDIT_THRESHOLD = 128
"""Mask pixels at least this bright (of 255) mark the area to edit."""


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def _grey(data: bytes) -> Image.Image:
    with Image.open(io.BytesIO(data)) as opened:
        return opened.convert("L")


def alpha_mask(bria_mask: bytes) -> bytes:
    """A Bria mask (white = edit, black = keep) as a domain mask: a PNG whose alpha is 0 where
    the image may change and 255 where it is kept."""
    grey = _grey(bria_mask)
    alpha = grey.point(lambda value: 0 if value >= _EDIT_THRESHOLD else 255)
    mask = Image.new("RGBA", grey.size, (0, 0, 0, 255))
    mask.putalpha(alpha)
    return _png(mask)


def kept_box(bria_mask: bytes) -> tuple[Box, tuple[int, int]]:
    """The box around what a Bria mask keeps (its dark part), and the mask's size."""
    grey = _grey(bria_mask)
    box = grey.point(lambda value: 255 if value < _EDIT_THRESHOLD else 0).getbbox()
    if box is None:
        raise InvalidRequest("mask keeps nothing of the image (it is all white)", param="mask")
    return box, grey.size


def crop(data: bytes, box: Box) -> bytes:
    """``data`` cropped to ``box``, as PNG."""
    with Image.open(io.BytesIO(data)) as opened:
        return _png(opened.crop(box))


def resize(data: bytes, size: tuple[int, int]) -> bytes:
    """``data`` scaled to ``size``, as PNG."""
    with Image.open(io.BytesIO(data)) as opened:
        return _png(opened.resize(size, Image.Resampling.LANCZOS))


def padding_in_canvas(
    image: tuple[int, int], canvas: tuple[int, int], location: tuple[int, int] | None
) -> Padding:
    """Left, top, right, bottom padding that places ``image`` at ``location`` (default: the
    centre) of ``canvas``; 400 when it does not fit inside."""
    width, height = image
    if location is None:
        location = ((canvas[0] - width) // 2, (canvas[1] - height) // 2)
    left, top = location
    right, bottom = canvas[0] - left - width, canvas[1] - top - height
    if min(left, top, right, bottom) < 0:
        too_small = canvas[0] < width or canvas[1] < height
        param = "canvas_size" if too_small else "original_image_location"
        raise InvalidRequest(
            f"a {width}x{height} image at {list(location)} does not fit a "
            f"{canvas[0]}x{canvas[1]} canvas",
            param=param,
        )
    return left, top, right, bottom


def canvas_for_ratio(image: tuple[int, int], ratio: float) -> tuple[int, int]:
    """The smallest canvas of shape ``ratio`` (width / height) that holds ``image``."""
    width, height = image
    if width / height < ratio:
        return max(width, round(height * ratio)), height
    return width, max(height, round(width / ratio))
