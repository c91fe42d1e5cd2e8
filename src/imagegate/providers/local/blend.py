"""Blending: two to five pictures combined into one, each owning a soft region of it.

Every picture (already cropped to fill the output) gets a centre on a jittered grid, in an
order drawn from ``rng``; each pixel takes the pictures in proportion to a softmax of its
distance to their centres, so regions meet along soft seams rather than hard Voronoi edges
and every picture shows around its own centre. The weights are computed on a coarse grid and
scaled up smoothly. Before compositing, each picture is toned a little toward the dominant
colours of all of them, so the parts share a palette; the prompt's colours, if it names any,
tone the result.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence

from PIL import Image

from imagegate.providers.local.draw import Rendered
from imagegate.providers.local.inputs import blend_stages
from imagegate.providers.local.palette import dominant_colours, tone
from imagegate.providers.local.scene import Scene

__all__ = ["render_blend"]

Centre = tuple[float, float]

_GRID = 48
"""Weight cells along the longer side."""
_SOFTNESS = 0.025
"""Softmax temperature, in squared distances on a unit-square canvas: larger, softer seams."""
_JITTER = 0.2
_HARMONY = 0.12
"""How far each picture is toned toward the shared palette."""
_PROMPT_TONE = 0.2
_SHARED_EACH = 2


def render_blend(
    images: Sequence[Image.Image], scene: Scene, rng: random.Random, stages: int = 0
) -> Rendered:
    """``images`` (RGBA, all the same size) blended into one; previews start at the first."""
    size = images[0].size
    shared = tuple(dict.fromkeys(c for i in images for c in dominant_colours(i, _SHARED_EACH)))
    toned = [tone(image, shared, _HARMONY) for image in images]
    result = toned[0]
    for image, mask in zip(toned[1:], _masks(len(images), size, rng), strict=True):
        result = Image.composite(image, result, mask)
    final = tone(result, scene.colours(), _PROMPT_TONE)
    return Rendered(final, blend_stages(images[0], final, stages))


def _masks(count: int, size: tuple[int, int], rng: random.Random) -> list[Image.Image]:
    """For pictures 1 … count-1, the alpha that lays each over those before it.

    Laying picture ``i`` over the running result with ``w_i / (w_0 + … + w_i)`` gives every
    picture exactly its softmax weight ``w_i`` in the end.
    """
    width, height = size
    scale = _GRID / max(width, height)
    grid = (max(1, round(width * scale)), max(1, round(height * scale)))
    aspect = (width / max(width, height), height / max(width, height))
    centres = _centres(count, width / height, rng)
    layers: list[list[int]] = [[] for _ in range(count - 1)]
    for row in range(grid[1]):
        for column in range(grid[0]):
            point = ((column + 0.5) / grid[0], (row + 0.5) / grid[1])
            weights = _weights(point, centres, aspect)
            running = weights[0]
            for index in range(1, count):
                running += weights[index]
                layers[index - 1].append(round(255 * weights[index] / running))
    return [
        Image.frombytes("L", grid, bytes(layer)).resize(size, Image.Resampling.BICUBIC)
        for layer in layers
    ]


def _centres(count: int, aspect: float, rng: random.Random) -> list[Centre]:
    """``count`` centres in cells of a near-square grid (fractions of the canvas)."""
    columns = max(1, min(count, round(math.sqrt(count * aspect))))
    rows = math.ceil(count / columns)
    cells = [(column, row) for row in range(rows) for column in range(columns)]
    rng.shuffle(cells)
    return [
        (
            (column + 0.5 + rng.uniform(-_JITTER, _JITTER)) / columns,
            (row + 0.5 + rng.uniform(-_JITTER, _JITTER)) / rows,
        )
        for column, row in cells[:count]
    ]


def _weights(point: Centre, centres: Sequence[Centre], aspect: tuple[float, float]) -> list[float]:
    distances = [
        ((point[0] - x) * aspect[0]) ** 2 + ((point[1] - y) * aspect[1]) ** 2 for x, y in centres
    ]
    nearest = min(distances)
    return [math.exp((nearest - distance) / _SOFTNESS) for distance in distances]
