"""The pixel work the Midjourney flow itself adds around the model's pictures: the 2×2 grid,
a quadrant cut back out of it, seamless tiling for ``--tile`` and the mask convention.

All of it is CPU work with Pillow; callers run it in a worker thread.
"""

from __future__ import annotations

from collections.abc import Sequence
from io import BytesIO

from PIL import Image, ImageChops, ImageOps

from imagegate.core.requests import GeneratedImage, OutputFormat
from imagegate.imaging.encode import encode_image

GRID = 2


def decode(data: bytes) -> Image.Image:
    """A picture the model made (trusted: the gateway's own output), fully loaded."""
    image = Image.open(BytesIO(data))
    image.load()
    return image


def size_of(data: bytes) -> tuple[int, int]:
    """Width and height from the header alone."""
    with Image.open(BytesIO(data)) as image:
        return image.size


def encode(image: Image.Image, output_format: OutputFormat) -> GeneratedImage:
    fmt = "png" if output_format == "svg" else output_format
    data = encode_image(image, fmt)
    return GeneratedImage(data, fmt, image.width, image.height)


def compose_grid(pictures: Sequence[Image.Image]) -> Image.Image:
    """Four pictures of one size as a 2×2 grid: 1 2 / 3 4 (Midjourney's U1–U4 order)."""
    if len(pictures) != GRID * GRID:
        raise ValueError(f"a grid needs 4 pictures, got {len(pictures)}")
    width, height = pictures[0].size
    mode = "RGBA" if any(p.mode in ("RGBA", "LA", "PA") for p in pictures) else "RGB"
    grid = Image.new(mode, (width * GRID, height * GRID), "white")
    for index, picture in enumerate(pictures):
        if picture.size != (width, height):
            picture = picture.resize((width, height), Image.Resampling.LANCZOS)
        box = ((index % GRID) * width, (index // GRID) * height)
        grid.paste(picture.convert(mode), box)
    return grid


def crop_quadrant(grid: Image.Image, index: int) -> Image.Image:
    """Quadrant ``index`` (1–4) of a grid made by :func:`compose_grid`."""
    if not 1 <= index <= GRID * GRID:
        raise ValueError(f"quadrant must be 1–4, not {index}")
    width, height = grid.width // GRID, grid.height // GRID
    left, top = ((index - 1) % GRID) * width, ((index - 1) // GRID) * height
    return grid.crop((left, top, left + width, top + height))


def make_tileable(picture: Image.Image) -> Image.Image:
    """The picture made seamless when repeated, by a wrap blend.

    The picture is blended with a copy of itself rolled by half its size (with wrap-around);
    the copy's weight grows from 0 at the centre to 1 at every edge. At the edges the result
    is therefore the rolled copy, whose left and right (top and bottom) edges are two
    neighbouring columns (rows) of the original's middle: the tile meets itself without a
    seam, while the centre keeps the picture as drawn.
    """
    width, height = picture.size
    rolled = ImageChops.offset(picture, width // 2, height // 2)
    across = _edge_ramp(width).resize((width, height), Image.Resampling.NEAREST)
    down = _edge_ramp(height).transpose(Image.Transpose.ROTATE_270)
    down = down.resize((width, height), Image.Resampling.NEAREST)
    weight = ImageChops.lighter(across, down)
    return Image.composite(rolled, picture, weight)


def _edge_ramp(length: int) -> Image.Image:
    """A 1-pixel-high ramp: 255 at both ends, 0 in the middle."""
    half = max(1, (length - 1) / 2)
    ramp = Image.new("L", (length, 1))
    ramp.putdata([round(255 * abs(x - (length - 1) / 2) / half) for x in range(length)])
    return ramp


def mask_to_alpha(mask: Image.Image, size: tuple[int, int] | None = None) -> bytes:
    """A Midjourney mask (white = repaint, black = keep; transparent counts as black) as the
    domain's mask: a PNG, ``size`` or the mask's own size, whose alpha is 0 where the model
    may change the picture and 255 where it must keep it."""
    flat = Image.new("RGBA", mask.size, (0, 0, 0, 255))
    flat.alpha_composite(mask.convert("RGBA"))
    grey = ImageOps.grayscale(flat.convert("RGB"))
    if size is not None and grey.size != size:
        grey = grey.resize(size, Image.Resampling.NEAREST)
    keep = grey.point(lambda value: 0 if value >= 128 else 255)
    out = Image.new("RGBA", grey.size, (255, 255, 255, 255))
    out.putalpha(keep)
    buffer = BytesIO()
    out.save(buffer, "PNG", compress_level=1)
    return buffer.getvalue()
