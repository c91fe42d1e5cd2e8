"""Builders and pixel measures shared by the edit and variation tests of the local renderer."""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable
from io import BytesIO

from PIL import Image, ImageChops, ImageDraw, ImageFilter, ImageStat

from imagegate.core.requests import ImageRequest, InputImage
from imagegate.core.upstream import ProviderContext

CTX = ProviderContext(http=None, request_id="req-edit", upstream_model="sketch")
Pixel = tuple[int, ...]
Box = tuple[int, int, int, int]


def photo(size: tuple[int, int] = (512, 512), seed: int = 0) -> Image.Image:
    """A busy, deterministic RGB picture in blues and greens with no red anywhere."""
    width, height = size
    ramp = Image.linear_gradient("L")
    image = Image.merge(
        "RGB",
        (
            ramp.resize(size).point(lambda v: v * 100 // 255),
            ramp.rotate(90).resize(size),
            ramp.rotate(180).resize(size).point(lambda v: 80 + v * 175 // 255),
        ),
    )
    pen = ImageDraw.Draw(image)
    rng = random.Random(seed)
    for _ in range(60):
        x, y = rng.randrange(width), rng.randrange(height)
        side = rng.randint(width // 40, width // 8)
        colour = (rng.randint(0, 110), rng.randint(60, 230), rng.randint(90, 255))
        pen.rectangle((x, y, x + side, y + side), fill=colour)
    return image


def as_input(image: Image.Image, fmt: str = "PNG") -> InputImage:
    """``image`` encoded the way the gateway hands it to a provider."""
    buffer = BytesIO()
    image.save(buffer, fmt)
    data = buffer.getvalue()
    alpha = image.mode in ("RGBA", "LA") or "transparency" in image.info
    name = {"PNG": "png", "JPEG": "jpeg", "WEBP": "webp"}[fmt]
    digest = hashlib.sha256(data).hexdigest()
    return InputImage(data, name, image.width, image.height, alpha, digest)  # type: ignore[arg-type]


def ellipse_mask(size: tuple[int, int], box: Box, alpha: int = 0) -> Image.Image:
    """An RGBA mask, opaque but for an ellipse of ``alpha`` (0 marks the area to change)."""
    mask = Image.new("RGBA", size, (0, 0, 0, 255))
    ImageDraw.Draw(mask).ellipse(box, fill=(0, 0, 0, alpha))
    return mask


def edit_request(images: tuple[InputImage, ...], **changes: object) -> ImageRequest:
    fields: dict[str, object] = {
        "operation": "edit",
        "model": "sketch",
        "prompt": "a red circle",
        "n": 1,
        "width": images[0].width,
        "height": images[0].height,
        "quality": "auto",
        "output_format": "png",
        "background": "auto",
        "images": images,
    }
    fields.update(changes)
    return ImageRequest(**fields)  # type: ignore[arg-type]


def decode_image(data: bytes) -> Image.Image:
    image = Image.open(BytesIO(data))
    image.load()
    return image


def pixels(image: Image.Image) -> list[Pixel]:
    """Every pixel as a tuple of band values (works on any Pillow version)."""
    data, bands = image.tobytes(), len(image.getbands())
    return [tuple(data[i : i + bands]) for i in range(0, len(data), bands)]


def where(mask: Image.Image, test: Callable[[int], bool]) -> Image.Image:
    """A 0/255 ``L`` image of where the ``L`` image ``mask`` passes ``test``."""
    return mask.point(lambda v: 255 if test(v) else 0)


def changed(a: Image.Image, b: Image.Image) -> Image.Image:
    """255 wherever any band of ``a`` and ``b`` differs, else 0."""
    bands = ImageChops.difference(a, b).split()
    biggest = bands[0]
    for band in bands[1:]:
        biggest = ImageChops.lighter(biggest, band)
    return biggest.point(lambda v: 255 if v else 0)


def count(mask: Image.Image, within: Image.Image | None = None) -> int:
    """How many pixels of the 0/255 ``L`` image are set (and set in ``within`` too)."""
    if within is not None:
        mask = ImageChops.multiply(mask, within)
    return mask.histogram()[255]


def mean_abs_diff(a: Image.Image, b: Image.Image) -> float:
    """Mean absolute difference per channel over the RGB pixels."""
    return sum(ImageStat.Stat(ImageChops.difference(a.convert("RGB"), b.convert("RGB"))).mean) / 3


def reddish(pixel: Pixel) -> bool:
    r, g, b = pixel[:3]
    return r > 170 and g < 90 and b < 90


def tool_request(operation: str, images: tuple[InputImage, ...], **changes: object) -> ImageRequest:
    """A request for one of the editing tools (no prompt unless given)."""
    fields: dict[str, object] = {"operation": operation, "prompt": ""}
    fields.update(changes)
    return edit_request(images, **fields)


def red_disc(
    size: tuple[int, int] = (256, 256), background: Pixel = (255, 255, 255)
) -> Image.Image:
    """A red disc filling the middle half of a plain ``background``."""
    width, height = size
    image = Image.new("RGB", size, background[:3])
    box = (width // 4, height // 4, width * 3 // 4, height * 3 // 4)
    ImageDraw.Draw(image).ellipse(box, fill=(220, 38, 38))
    return image


def edge_energy(image: Image.Image) -> float:
    """Mean edge strength of the grey image: more for sharper, more contrasted pictures."""
    return ImageStat.Stat(image.convert("L").filter(ImageFilter.FIND_EDGES)).mean[0]


def contrast(image: Image.Image) -> float:
    """Standard deviation of the grey levels."""
    return ImageStat.Stat(image.convert("L")).stddev[0]
