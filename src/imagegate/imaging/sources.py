"""Turn what a client sent for an image into a checked :class:`InputImage`.

Boundary: a multipart upload (``bytes``), inline base64 or a data URI (``str``), or an http(s)
URL (``str``) goes in; a checked :class:`~imagegate.imaging.image.InputImage` comes out, or a
client error naming the field. Sizes are enforced before anything is decoded: base64 from the
string's length, downloads while streaming (in :mod:`imagegate.outbound`). The image checks
themselves are :func:`imagegate.imaging.inspect.inspect_image`. CPU work (decoding big base64
strings, inspecting) runs in a worker thread, never on the event loop.
"""

from __future__ import annotations

import asyncio
import binascii
import logging
import re
from typing import TYPE_CHECKING, Final

import pybase64

from imagegate.errors import InvalidRequest, PayloadTooLarge
from imagegate.imaging.budget import DECODE_BUDGET
from imagegate.imaging.fetch import ImageFetcher
from imagegate.imaging.inspect import decode_cost, inspect_image

if TYPE_CHECKING:
    from imagegate.imaging.image import InputImage
    from imagegate.imaging.limits import ImageLimits

# ImageFetcher is re-exported: callers get the whole input pipeline from this module.
__all__ = ["ImageFetcher", "decode_base64_image", "load_image"]

log = logging.getLogger("imagegate.imaging")

# A URL scheme at the start of the string. Base64 never contains ":", so a match is never data.
_SCHEME: Final = re.compile(r"\s*([A-Za-z][A-Za-z0-9+.\-]{0,31}):")
_MAX_DATA_URI_HEADER: Final = 256
# Room for a trailing newline or two; other whitespace counts towards the limit.
_SLACK: Final = 4
_WHITESPACE: Final = b" \t\r\n\v\f"
_URLSAFE_TO_STANDARD: Final = bytes.maketrans(b"-_", b"+/")


def decode_base64_image(text: str, *, param: str, max_bytes: int) -> bytes:
    """Decode a ``data:`` URI or raw base64 (standard or URL-safe, padded or not).

    Whitespace is ignored, but it counts towards the size: a text longer than the base64 form
    of ``max_bytes`` is refused with :class:`PayloadTooLarge` from its length alone, before
    anything is copied or decoded. Non-base64 content and non-base64 data URIs raise
    :class:`InvalidRequest`.
    """
    start = _payload_start(text, param) if _scheme(text) == "data" else 0
    if len(text) - start > _encoded_length(max_bytes) + _SLACK:
        raise _too_large(param, (len(text) - start) * 3 // 4, max_bytes)
    try:
        raw = text[start:].encode("ascii")
    except UnicodeEncodeError:
        raise _not_base64(param) from None
    if len(raw) % 4 == 0 and _decoded_length(raw) <= max_bytes:
        try:  # the common case, canonical base64, needs no further copy
            return bytes(pybase64.b64decode(raw, validate=True))
        except binascii.Error:
            pass
    raw = raw.translate(_URLSAFE_TO_STANDARD, _WHITESPACE).rstrip(b"=")
    if len(raw) % 4 == 1:
        raise _not_base64(param)
    if len(raw) * 3 // 4 > max_bytes:
        raise _too_large(param, len(raw) * 3 // 4, max_bytes)
    try:
        return bytes(pybase64.b64decode(raw + b"=" * (-len(raw) % 4), validate=True))
    except binascii.Error:
        raise _not_base64(param) from None


async def load_image(
    source: bytes | str, *, param: str, limits: ImageLimits, fetcher: ImageFetcher
) -> InputImage:
    """Check an image a client sent as an upload, base64, a data URI or an http(s) URL.

    Any other URL scheme (``file:``, ``gopher:``, ``ftp:``, …) is refused with
    :class:`InvalidRequest` naming ``param``.
    """
    if isinstance(source, bytes):
        kind = "upload"
        image = await _inspect(source, param, limits)
    else:
        scheme = _scheme(source)
        if scheme in ("http", "https"):
            kind = "url"
            data = await fetcher.fetch(source, max_bytes=limits.max_bytes, param=param)
            image = await _inspect(data, param, limits)
        elif scheme in (None, "data"):
            kind = "base64"
            data = await asyncio.to_thread(
                decode_base64_image, source, param=param, max_bytes=limits.max_bytes
            )
            image = await _inspect(data, param, limits)
        else:
            raise InvalidRequest(
                f"{param} uses the unsupported scheme '{scheme}:'; send an http(s) URL,"
                " a base64 data URI or an upload",
                param=param,
            )
    log.info(
        "input %s (%s): %s %dx%d, %d bytes, sha256 %s",
        param,
        kind,
        image.format,
        image.width,
        image.height,
        len(image.data),
        image.sha256,
    )
    return image


async def _inspect(data: bytes, param: str, limits: ImageLimits) -> InputImage:
    """Inspect in a worker thread, within the process's budget of decoded pixels."""
    async with DECODE_BUDGET.hold(decode_cost(data, limits), param=param):
        return await asyncio.to_thread(inspect_image, data, param=param, limits=limits)


def _scheme(text: str) -> str | None:
    match = _SCHEME.match(text[:64])
    return match.group(1).lower() if match else None


def _payload_start(text: str, param: str) -> int:
    """Where the payload of a ``data:[type][;param=value]*;base64,`` URI starts."""
    start = text.index(":") + 1
    comma = text.find(",", start, start + _MAX_DATA_URI_HEADER)
    if comma < 0:
        raise InvalidRequest(f"{param} is not a valid data URI", param=param)
    if text[start:comma].rsplit(";", 1)[-1].strip().lower() != "base64":
        raise InvalidRequest(
            f"{param} must be a base64 data URI (data:image/png;base64,...)", param=param
        )
    return comma + 1


def _encoded_length(decoded: int) -> int:
    return 4 * -(-decoded // 3)


def _decoded_length(canonical: bytes) -> int:
    """The decoded size of padded base64 without whitespace."""
    return len(canonical) * 3 // 4 - canonical[-2:].count(b"=")


def _too_large(param: str, size: int, max_bytes: int) -> PayloadTooLarge:
    return PayloadTooLarge(
        f"{param} is about {size} bytes once decoded; the limit is {max_bytes} bytes",
        param=param,
    )


def _not_base64(param: str) -> InvalidRequest:
    return InvalidRequest(f"{param} is not valid base64", param=param)
