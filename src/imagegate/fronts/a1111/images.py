"""img2img inputs: the first init image and A1111's mask (white = change, black = keep),
checked and turned into the domain's alpha mask (alpha 0 = change)."""

from __future__ import annotations

import asyncio
import io

from PIL import Image

from imagegate.core.catalog import CatalogEntry, InputSpec
from imagegate.core.keys import ApiKey
from imagegate.core.params import ImageSource
from imagegate.errors import InvalidRequest
from imagegate.fronts.a1111.wire import Img2ImgBody
from imagegate.fronts.common.tasks import input_loader
from imagegate.imaging.limits import ImageLimits
from imagegate.services import Services

CHANGE_THRESHOLD = 128
"""Mask pixels at least this bright (of 255) mark the area to change."""


async def load_img2img_inputs(
    services: Services, key: ApiKey, entry: CatalogEntry, body: Img2ImgBody
) -> tuple[bytes, bytes | None]:
    """The first init image's bytes and, with a mask, the domain mask's PNG bytes; a 400
    names ``init_images[0]`` or ``mask`` when one is broken or they differ in size."""
    spec = entry.spec.edit or InputSpec()
    limits = ImageLimits(max_bytes=spec.max_image_bytes, formats=frozenset(spec.formats))
    loader = input_loader(services)
    image = await loader.load(
        ImageSource("init_images[0]", body.init_images[0]), owner_key_id=key.id, limits=limits
    )
    if body.mask is None:
        return image.data, None
    mask = await loader.load(ImageSource("mask", body.mask), owner_key_id=key.id, limits=limits)
    if (mask.width, mask.height) != (image.width, image.height):
        raise InvalidRequest(
            f"mask is {mask.width}x{mask.height} but init_images[0] is "
            f"{image.width}x{image.height}; they must be the same size",
            param="mask",
        )
    return image.data, await asyncio.to_thread(alpha_mask, mask.data)


def alpha_mask(a1111_mask: bytes) -> bytes:
    """A PNG whose alpha is 0 where the A1111 mask is white (change) and 255 elsewhere."""
    with Image.open(io.BytesIO(a1111_mask)) as opened:
        grey = opened.convert("L")
    alpha = grey.point(lambda value: 0 if value >= CHANGE_THRESHOLD else 255)
    mask = Image.new("RGBA", grey.size, (0, 0, 0, 255))
    mask.putalpha(alpha)
    buffer = io.BytesIO()
    mask.save(buffer, "PNG")
    return buffer.getvalue()
