"""Input images of every operation but ``generate``: decoded, converted to RGBA and fitted.

Everything here is CPU work done with Pillow; callers run it in a worker thread. How the
inputs are fitted depends on the operation (:func:`prepare`): usually ``images[0]`` is
stretched to the output size (never cropped), so a mask stays aligned with its image and no
part of a masked area is lost; ``upscale`` and ``outpaint`` get it at its own size, ``blend``
gets every image cropped to fill the output, ``describe`` a thumbnail. Large downscales first
use :meth:`~PIL.Image.Image.reduce` (an exact box average by an integer factor), which is
several times faster than resampling the full image and anti-aliases just as well.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from io import BytesIO

from PIL import Image

from imagegate.core.requests import ImageRequest, InputImage

__all__ = [
    "DESCRIBE_SIDE",
    "REFERENCE_SIDE",
    "Inputs",
    "blend_stages",
    "decode",
    "decode_cover",
    "decode_keep",
    "decode_thumbnail",
    "fit",
    "flatten",
    "input_seed",
    "prepare",
]

REFERENCE_SIDE = 256
"""Reference images are kept as thumbnails at most this many pixels on a side."""
DESCRIBE_SIDE = 256
"""An image to describe is looked at as a thumbnail at most this many pixels on a side."""
_NATIVE = frozenset({"upscale", "outpaint"})
"""Operations that work on ``images[0]`` at its own size (the output is larger)."""
_ALPHA_KEPT = frozenset({"remove_background", "replace_background"})
"""Operations that read the input's own alpha, so it is never flattened."""

_WHITE = (255, 255, 255, 255)
_SIXTEEN_BIT = ("I", "I;16", "I;16B", "I;16L", "I;16N")


@dataclass(frozen=True, slots=True)
class Inputs:
    """The decoded inputs of one request, shared read-only by all of its images.

    ``base`` is ``images[0]`` at the output size, RGBA (flattened onto white unless the
    background is transparent); :func:`prepare` says where it differs by operation. ``keep``
    is the mask's alpha at the same size (255 keeps a pixel, 0 replaces it) or None without a
    mask. ``references`` are the other images as RGBA thumbnails (for ``blend``, at the output
    size). ``digest`` identifies all input bytes, for seeding.
    """

    base: Image.Image
    keep: Image.Image | None
    references: tuple[Image.Image, ...]
    digest: bytes


def prepare(request: ImageRequest) -> Inputs:
    """Decode and fit the inputs of ``request``, as its operation needs them.

    ``upscale`` and ``outpaint`` keep ``images[0]`` at its own size; ``remove_background``
    and ``replace_background`` keep its alpha even on an opaque background; ``blend`` fits
    every image to the output (:func:`decode_cover`); ``describe`` takes a thumbnail.
    """
    if not request.images:
        raise ValueError(f"an {request.operation} needs at least one input image")
    size = (request.width, request.height)
    if request.operation == "blend":
        return _prepare_blend(request, size)
    if request.operation == "describe":
        thumbnail = flatten(decode_thumbnail(request.images[0], DESCRIBE_SIDE))
        return Inputs(thumbnail, None, (), _digest(request))
    base = decode(request.images[0], None if request.operation in _NATIVE else size)
    if request.background != "transparent" and request.operation not in _ALPHA_KEPT:
        base = flatten(base)
    keep = decode_keep(request.mask, size) if request.mask is not None else None
    references = tuple(decode_thumbnail(image, REFERENCE_SIDE) for image in request.images[1:])
    return Inputs(base, keep, references, _digest(request))


def _prepare_blend(request: ImageRequest, size: tuple[int, int]) -> Inputs:
    images = [decode_cover(image, size) for image in request.images]
    if request.background != "transparent":
        images = [flatten(image) for image in images]
    return Inputs(images[0], None, tuple(images[1:]), _digest(request))


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


def decode_cover(image: InputImage, size: tuple[int, int]) -> Image.Image:
    """``image`` decoded to RGBA, cropped about its centre to the aspect of ``size`` and
    scaled to fill it (what a blend of differently shaped pictures needs)."""
    with Image.open(BytesIO(image.data)) as opened:
        opened.draft(None, size)
        opened.load()
        decoded = _native(opened)
    width, height = decoded.size
    scale = max(size[0] / width, size[1] / height)
    crop_w, crop_h = size[0] / scale, size[1] / scale
    left, top = (width - crop_w) / 2, (height - crop_h) / 2
    box = (left, top, left + crop_w, top + crop_h)
    return decoded.resize(size, Image.Resampling.BICUBIC, box, reducing_gap=2.0).convert("RGBA")


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
        opened.draft(None, size)
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
