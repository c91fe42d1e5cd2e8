"""Token usage for the sketch renderer, shaped like gpt-image-1's so metering treats it alike.

* ``input_text_tokens`` = ``len(re.findall(r"\\w+|[^\\w\\s]", prompt))``: one token per word
  and per punctuation mark, a stable stand-in for a BPE count.
* ``output_image_tokens`` = ``n × round(BASE[quality] × width × height / 1024²)``, at least
  1 per image, with ``BASE`` = gpt-image-1's 1024×1024 table: low 272, medium 1056,
  high 4160. ``auto`` (and ``standard``) count as medium, ``hd`` as high; any other value
  counts as medium.

Scaling by area reproduces gpt-image-1's published figures for its other sizes
(1024×1536: low 408, medium 1584, high 6240).
"""

from __future__ import annotations

import re

from imagegate.core.requests import Usage

__all__ = ["IMAGE_TOKENS_1024", "estimate_usage"]

IMAGE_TOKENS_1024: dict[str, int] = {"low": 272, "medium": 1056, "high": 4160}
_ALIASES = {"auto": "medium", "standard": "medium", "hd": "high"}
_TOKEN = re.compile(r"\w+|[^\w\s]")


def estimate_usage(prompt: str, width: int, height: int, quality: str, n: int) -> Usage:
    """The usage one request of ``n`` images would report; see the module docstring."""
    base = IMAGE_TOKENS_1024.get(_ALIASES.get(quality, quality), IMAGE_TOKENS_1024["medium"])
    per_image = max(1, round(base * width * height / (1024 * 1024)))
    return Usage(input_text_tokens=len(_TOKEN.findall(prompt)), output_image_tokens=per_image * n)
