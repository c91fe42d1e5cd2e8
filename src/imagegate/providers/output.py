"""What adapters make of an upstream's image payload: bytes with their format sniffed, base64
decoded by the C codec. :mod:`imagegate.core.conform` checks and converts them later."""

from __future__ import annotations

import binascii
from typing import Final

import pybase64

from imagegate.core.conform import bad_response, no_image
from imagegate.core.requests import GeneratedImage, OutputFormat
from imagegate.imaging.inspect import sniff_format

__all__ = ["decode_b64", "no_image", "upstream_image"]

_AS_OUTPUT: Final[dict[str, OutputFormat]] = {"png": "png", "jpeg": "jpeg", "webp": "webp"}


def upstream_image(
    data: bytes, *, revised_prompt: str | None = None, b64: str | memoryview | None = None
) -> GeneratedImage:
    """An image as an upstream sent it (``b64``: the same bytes in base64, if it sent that);
    :func:`~imagegate.core.conform.conform` checks and fixes it later."""
    fmt = _AS_OUTPUT.get(sniff_format(data[:4096]) or "", "png")
    return GeneratedImage(data, fmt, 0, 0, revised_prompt, b64)


def decode_b64(text: str | memoryview, provider: str) -> bytes:
    """An upstream's base64 image payload as bytes (C codec); not base64 is a 502."""
    try:
        return bytes(pybase64.b64decode(text, validate=True))
    except (ValueError, binascii.Error):
        raise bad_response(provider, "an image payload that is not base64") from None
