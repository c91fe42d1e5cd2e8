"""Input images of an edit or a variation: decoded, converted to RGBA and fitted to the output.

Everything here is CPU work done with Pillow; callers run it in a worker thread. Images are
stretched to the output size (never cropped), so a mask stays aligned with its image and no
part of a masked area is lost. Large downscales first use :meth:`~PIL.Image.Image.reduce`
(an exact box average by an integer factor), which is several times faster than resampling
the full image and anti-aliases just as well.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from io import BytesIO

from PIL import Image

from imagegate.core.requests import ImageRequest, InputImage

__all__ = [
    "REFERENCE_SIDE",
    "Inputs",
    "blend_stages",
    "decode",
    "decode_keep",
    "decode_thumbnail",
    "fit",
    "flatten",
    "input_seed",
    "prepare",
]

REFERENCE_SIDE = 256
"""Reference images are kept as thumbnails at most this many pixels on a side."""

_WHITE = (255, 255, 255, 255)
_SIXTEEN_BIT = ("I", "I;16", "I;16B", "I;16L", "I;16N")


@dataclass(frozen=True, slots=True)
class Inputs:
    """The decoded inputs of one request, shared read-only by all of its images.

    ``base`` is ``images[0]`` at the output size, RGBA (flattened onto white unless the
    background is transparent). ``keep`` is the mask's alpha at the same size (255 keeps a
    pixel, 0 replaces it) or None without a mask. ``references`` are the other images as RGBA
    thumbnails. ``digest`` identifies all input bytes, for seeding.
    """

    base: Image.Image
    keep: Image.Image | None
    references: tuple[Image.Image, ...]
    digest: bytes


def prepare(request: ImageRequest) -> Inputs:
    """Decode and fit the inputs of an edit or variation ``request``."""
    if not request.images:
        raise ValueError(f"an {request.operation} needs at least one input image")
    size = (request.width, request.height)
    base = decode(request.images[0], size)
    if request.background != "transparent":
        base = flatten(base)
    keep = decode_keep(request.mask, size) if request.mask is not None else None
    references = tuple(decode_thumbnail(image, REFERENCE_SIDE) for image in request.images[1:])
    return Inputs(base, keep, references, _digest(request))


def input_seed(request: ImageRequest, digest: bytes, seed: int, variant: int) -> int:
    """The RNG seed for one edited or varied image: a SHA-256 over every input, like
    :func:`~.draw.render_seed` but also over the operation, fidelity and input bytes."""
    fidelity = "high" if request.input_fidelity == "high" else "low"  # None means low
    fields = (request.operation, request.prompt, request.width, request.height, seed, variant)
    key = "\x00".join(map(str, (*fields, fidelity))).encode() + digest
    return int.from_bytes(hashlib.sha256(key).digest()[:16], "big")


def _digest(request: ImageRequest) -> bytes:
    hashes = [image.sha256 for image in request.images]
    hashes.append(request.mask.sha256 if request.mask is not None else "")
    return hashlib.sha256("\x00".join(hashes).encode()).digest()


def decode(image: InputImage, size: tuple[int, int] | None = None) -> Image.Image:
    """``image`` decoded to RGBA, fitted to ``size`` when given (see :func:`fit`).

    A JPEG is decoded straight at a reduced scale when that still covers ``size``; the
    fitting happens before the conversion to RGBA, on fewer bands.
    """
    with Image.open(BytesIO(image.data)) as opened:
        if size is not None:
            opened.draft(None, size)
        opened.load()
        decoded = _native(opened)
    return (fit(decoded, size) if size is not None else decoded).convert("RGBA")


def decode_thumbnail(image: InputImage, side: int) -> Image.Image:
    """``image`` decoded to RGBA and shrunk (aspect kept) to at most ``side`` on a side."""
    with Image.open(BytesIO(image.data)) as opened:
        opened.draft(None, (side, side))
        opened.load()
        decoded = _native(opened)
    decoded.thumbnail((side, side), Image.Resampling.BOX)
    return decoded.convert("RGBA")


def decode_keep(mask: InputImage, size: tuple[int, int]) -> Image.Image:
    """The mask's alpha as an ``L`` image of ``size`` (255 keeps, 0 changes).

    A mask without any alpha (which the API should not let through) is read by its grey
    levels instead, so black marks the area to change.
    """
    with Image.open(BytesIO(mask.data)) as opened:
        opened.load()
        if opened.mode in ("RGBA", "LA"):
            alpha = opened.getchannel("A")
        elif opened.has_transparency_data:
            alpha = opened.convert("RGBA").getchannel("A")
        else:
            alpha = _native(opened).convert("L")
    return fit(alpha, size)


def _native(image: Image.Image) -> Image.Image:
    """``image`` in a mode Pillow resamples directly; 16-bit grey is scaled, not clipped."""
    if image.mode in ("RGB", "RGBA", "L", "LA"):
        return image
    if image.mode in _SIXTEEN_BIT:
        return image.convert("I").point(lambda v: v / 257).convert("L")
    return image.convert("RGBA" if image.has_transparency_data else "RGB")


def fit(image: Image.Image, size: tuple[int, int]) -> Image.Image:
    """``image`` stretched to ``size``: an integer box reduction first, then bicubic.

    Stretching (never cropping) keeps a mask aligned with its image and loses nothing.
    """
    if image.size == size:
        return image
    factor = min(image.width // size[0], image.height // size[1])
    if factor >= 2:
        image = image.reduce(factor)
    return image if image.size == size else image.resize(size, Image.Resampling.BICUBIC)


def flatten(image: Image.Image) -> Image.Image:
    """``image`` (RGBA) composited onto white, still RGBA but fully opaque."""
    if image.getchannel("A").getextrema() == (255, 255):
        return image
    return Image.alpha_composite(Image.new("RGBA", image.size, _WHITE), image)


def blend_stages(start: Image.Image, final: Image.Image, count: int) -> list[Image.Image]:
    """``count`` previews going from ``start`` (the first) toward ``final`` (never reached)."""
    return [Image.blend(start, final, index / count) for index in range(count)]
