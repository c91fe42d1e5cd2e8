"""A client image once checked: the type :mod:`imagegate.imaging` hands to everything above it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

InputFormat = Literal["png", "jpeg", "webp"]

MIME_TYPES: dict[str, str] = {
    "png": "image/png",
    "jpeg": "image/jpeg",
    "webp": "image/webp",
    "svg": "image/svg+xml",
}


@dataclass(frozen=True, slots=True)
class InputImage:
    """An image a client sent, checked by :mod:`imagegate.imaging`: an allowed format, within its
    byte and pixel limits, fully decodable, metadata stripped. A GIF arrives as its first frame,
    re-encoded as PNG."""

    data: bytes
    format: InputFormat
    width: int
    height: int
    has_alpha: bool
    sha256: str

    @property
    def mime_type(self) -> str:
        return MIME_TYPES[self.format]
