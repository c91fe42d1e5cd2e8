"""A smooth guess at what lies under a masked area, from the pixels around it.

The kept pixels (weighted by the mask's keep value and the image's own alpha) are averaged
over a coarse grid; grid cells with too little kept area are filled ring by ring from their
filled neighbours; the grid is scaled back up bilinearly. It is a colour field, not texture
synthesis: it continues the surroundings' colours and lighting across the hole.
"""

from __future__ import annotations

from PIL import Image, ImageChops

from imagegate.providers.local.scene import RGB

__all__ = ["surroundings"]

_CELLS = 16
"""Grid cells across the shorter side."""
_MAX_CELLS = 48
_WORK_SIDE = 256
"""Larger images are box-reduced to about this shorter side before averaging."""
_KNOWN = 64
"""A cell whose average weight reaches this (a quarter kept) has a reliable colour."""


def surroundings(image: Image.Image, keep: Image.Image) -> Image.Image:
    """An RGB image the size of ``image`` (RGBA) that fills the area ``keep`` (L) drops."""
    size = image.size
    factor = min(size) // _WORK_SIDE
    if factor >= 2:  # the grid is coarse: averaging a reduced copy gives the same colours
        image, keep = image.reduce(factor), keep.reduce(factor)
    weight = ImageChops.multiply(keep, image.getchannel("A"))
    rgb = image.convert("RGB")
    weighted = ImageChops.multiply(rgb, Image.merge("RGB", (weight, weight, weight)))
    grid = _grid(size)
    sums = weighted.resize(grid, Image.Resampling.BOX).tobytes()
    weights = weight.resize(grid, Image.Resampling.BOX).tobytes()
    cells: dict[int, RGB] = {}
    for index, amount in enumerate(weights):
        if amount >= _KNOWN:
            cells[index] = _divide(sums[3 * index : 3 * index + 3], amount)
    _spread(cells, grid, fallback=_mean(rgb))
    small = Image.frombytes("RGB", grid, b"".join(bytes(cells[i]) for i in range(len(weights))))
    return small.resize(size, Image.Resampling.BILINEAR)


def _grid(size: tuple[int, int]) -> tuple[int, int]:
    width, height = size
    step = max(1.0, min(width, height) / _CELLS)
    return (
        max(1, min(_MAX_CELLS, round(width / step))),
        max(1, min(_MAX_CELLS, round(height / step))),
    )


def _divide(total: bytes, weight: int) -> RGB:
    r, g, b = (min(255, round(channel * 255 / weight)) for channel in total)
    return r, g, b


def _mean(image: Image.Image) -> RGB:
    r, g, b = image.resize((1, 1), Image.Resampling.BOX).tobytes()
    return r, g, b


def _spread(cells: dict[int, RGB], grid: tuple[int, int], fallback: RGB) -> None:
    """Fill the missing cells ring by ring with the mean of their already filled neighbours."""
    width, height = grid
    total = width * height
    if not cells:
        cells.update(dict.fromkeys(range(total), fallback))
        return
    while len(cells) < total:
        ring: dict[int, RGB] = {}
        for index in range(total):
            if index in cells:
                continue
            near = [cells[n] for n in _neighbours(index, width, height) if n in cells]
            if near:
                ring[index] = _average(near)
        cells.update(ring)


def _neighbours(index: int, width: int, height: int) -> list[int]:
    y, x = divmod(index, width)
    return [
        ny * width + nx
        for ny in range(max(0, y - 1), min(height, y + 2))
        for nx in range(max(0, x - 1), min(width, x + 2))
        if (nx, ny) != (x, y)
    ]


def _average(colours: list[RGB]) -> RGB:
    count = len(colours)
    return (
        round(sum(c[0] for c in colours) / count),
        round(sum(c[1] for c in colours) / count),
        round(sum(c[2] for c in colours) / count),
    )
