"""Make an upstream's images exactly what the client asked for, whatever the upstream sent.

Boundary: an adapter's :class:`~imagegate.core.requests.ImageResult` and the request in; the
same result out with every image in the requested ``output_format`` (converted in a worker
thread when the upstream chose another), its real width and height filled in, or an
:class:`~imagegate.errors.UpstreamError` for a 200 with no image or bytes that are no image.

The common case costs nothing: an image already in the requested format is not decoded; a PNG's
size is read from its header on the event loop, other formats' from Pillow's lazy open.
"""

from __future__ import annotations

import asyncio
import struct
from dataclasses import replace
from io import BytesIO
from typing import Final

from PIL import Image

from imagegate.core.requests import GeneratedImage, ImageRequest, ImageResult, OutputFormat
from imagegate.errors import UpstreamError
from imagegate.imaging.budget import DECODE_BUDGET
from imagegate.imaging.encode import encode_image
from imagegate.imaging.inspect import decode_cost, sniff_format
from imagegate.imaging.limits import ImageLimits

__all__ = ["bad_response", "conform", "no_image"]

_DECODABLE: Final = {"png": "PNG", "jpeg": "JPEG", "webp": "WEBP", "gif": "GIF"}
MAX_PIXELS: Final = 100_000_000
MAX_SIDE: Final = 16384
_UPSTREAM_LIMITS: Final = ImageLimits(max_bytes=1 << 40, max_pixels=MAX_PIXELS, max_side=MAX_SIDE)
"""For :func:`decode_cost` only: what a result may cost to convert."""


def bad_response(provider: str, what: str) -> UpstreamError:
    """A 2xx answer that is not what the provider's API promises (truncated, wrong shape)."""
    return UpstreamError(
        f"{provider} sent an invalid response: {what}", code="upstream_bad_response"
    )


def no_image(provider: str, detail: str = "") -> UpstreamError:
    """A successful answer that carries no image (retryable: the next try may draw one)."""
    tail = f" ({detail})" if detail else ""
    return UpstreamError(f"{provider} answered without an image{tail}", code="upstream_no_image")


async def conform(result: ImageResult, request: ImageRequest, provider: str) -> ImageResult:
    """``result`` with every image in ``request.output_format`` and its real size."""
    if not result.images:
        if request.operation == "describe" and result.text:
            return result
        raise no_image(provider)
    images = [await _conform_one(image, request, provider) for image in result.images]
    return replace(result, images=images)


async def _conform_one(
    image: GeneratedImage, request: ImageRequest, provider: str
) -> GeneratedImage:
    fmt = sniff_format(image.data[:4096])
    wanted = request.output_format
    if wanted == "svg":
        if fmt != "svg":
            raise bad_response(provider, f"a {fmt or 'unknown'} file where an SVG was asked for")
        return replace(image, output_format="svg")
    if fmt not in _DECODABLE:
        raise bad_response(provider, f"a file that is not an image ({fmt or 'unknown format'})")
    if fmt == wanted:
        if image.width > 0 and image.height > 0:  # the adapter decoded it already
            return image if image.output_format == wanted else replace(image, output_format=wanted)
        size = _png_size(image.data) if fmt == "png" else None
        if size is None:
            size = await asyncio.to_thread(_lazy_size, image.data, fmt, provider)
        return replace(image, output_format=wanted, width=size[0], height=size[1])
    # The upstream is paid for: wait for the decode budget rather than refuse.
    pixels = decode_cost(image.data, _UPSTREAM_LIMITS)
    async with DECODE_BUDGET.hold(pixels, patient=True):
        return await asyncio.to_thread(_convert, image, fmt, wanted, request, provider)


def _png_size(data: bytes) -> tuple[int, int] | None:
    if len(data) < 24 or data[12:16] != b"IHDR":
        return None
    width, height = struct.unpack_from(">II", data, 16)
    return (width, height) if 0 < width <= MAX_SIDE and 0 < height <= MAX_SIDE else None


def _open(data: bytes, fmt: str, provider: str) -> Image.Image:
    try:
        image = Image.open(BytesIO(data), formats=[_DECODABLE[fmt]])
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):
        raise bad_response(provider, f"a {fmt} image that does not open") from None
    width, height = image.size
    if max(width, height) > MAX_SIDE or width * height > MAX_PIXELS:
        raise bad_response(provider, f"an image of {width}x{height} pixels")
    return image


def _lazy_size(data: bytes, fmt: str, provider: str) -> tuple[int, int]:
    with _open(data, fmt, provider) as image:
        return image.size


def _convert(
    image: GeneratedImage,
    fmt: str,
    wanted: OutputFormat,
    request: ImageRequest,
    provider: str,
) -> GeneratedImage:
    with _open(image.data, fmt, provider) as opened:
        try:
            opened.load()
        except (OSError, ValueError, SyntaxError, EOFError):
            raise bad_response(provider, f"a {fmt} image that does not decode") from None
        pixels = opened if opened.mode in ("RGB", "RGBA", "L") else opened.convert("RGBA")
        if wanted not in ("png", "jpeg", "webp"):  # pragma: no cover - svg handled above
            raise bad_response(provider, f"an image that cannot become {wanted}")
        data = encode_image(pixels, wanted, request.output_compression)
        return replace(
            image,
            data=data,
            b64=None,
            output_format=wanted,
            width=opened.width,
            height=opened.height,
        )
