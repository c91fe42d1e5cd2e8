"""What an input image may be: plain data, filled per model by the catalogue.

This module only describes limits; :mod:`imagegate.imaging.inspect` and
:mod:`imagegate.imaging.sources` enforce them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["DEFAULT_FORMATS", "ImageLimits"]

DEFAULT_FORMATS: frozenset[str] = frozenset({"png", "jpeg", "webp", "gif"})


@dataclass(frozen=True, slots=True)
class ImageLimits:
    """Limits for one input image.

    ``max_bytes`` caps the encoded size (and the decoded size of inline base64),
    ``max_pixels`` caps ``width * height``, ``max_side`` caps either side, and ``formats``
    lists the allowed formats by their :func:`~imagegate.imaging.inspect.sniff_format` names.
    """

    max_bytes: int = 50 * 1024 * 1024
    max_pixels: int = 50_000_000
    max_side: int = 16384
    formats: frozenset[str] = field(default=DEFAULT_FORMATS)
