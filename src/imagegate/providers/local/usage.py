"""Token usage for the sketch renderer, shaped like gpt-image-1's so metering treats it alike.

* ``input_text_tokens`` = ``len(re.findall(r"\\w+|[^\\w\\s]", prompt))``: one token per word
  and per punctuation mark, a stable stand-in for a BPE count.
* ``input_image_tokens`` (edits and variations) = the sum over the input images (not the
  mask, which only says where to edit) of ``85 + 65 × tiles``: the image is scaled down to
  fit 2048×2048, then down so its shorter side is at most 768, and ``tiles`` is the number
  of 512×512 tiles covering it (never scaled up). This is the GPT-4o vision rule with
  gpt-image-1's smaller per-tile figure; a 1024×1024 input counts 85 + 65 × 4 = 345.
* ``output_image_tokens`` = ``n × round(BASE[quality] × width × height / 1024²)``, at least
  1 per image, with ``BASE`` = gpt-image-1's 1024×1024 table: low 272, medium 1056,
  high 4160. ``auto`` (and ``standard``) count as medium, ``hd`` as high; any other value
  counts as medium.

Scaling by area reproduces gpt-image-1's published figures for its other sizes
(1024×1536: low 408, medium 1584, high 6240).

A ``describe`` request makes no image: its ``output_text_tokens`` count the text it returns
by the same rule as the prompt, and ``output_image_tokens`` are 0.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

from imagegate.core.requests import InputImage, Usage

__all__ = ["IMAGE_TOKENS_1024", "estimate_usage", "input_image_tokens", "text_usage"]

IMAGE_TOKENS_1024: dict[str, int] = {"low": 272, "medium": 1056, "high": 4160}
_ALIASES = {"auto": "medium", "standard": "medium", "hd": "high"}
_TOKEN = re.compile(r"\w+|[^\w\s]")
_INPUT_BASE = 85
_INPUT_PER_TILE = 65
_TILE = 512
_FIT = 2048
_SHORT_SIDE = 768


def estimate_usage(
    prompt: str,
    width: int,
    height: int,
    quality: str,
    n: int,
    images: Sequence[InputImage] = (),
) -> Usage:
    """The usage one request of ``n`` images from ``images`` would report; see the module."""
    base = IMAGE_TOKENS_1024.get(_ALIASES.get(quality, quality), IMAGE_TOKENS_1024["medium"])
    per_image = max(1, round(base * width * height / (1024 * 1024)))
    return Usage(
        input_text_tokens=len(_TOKEN.findall(prompt)),
        input_image_tokens=sum(input_image_tokens(i.width, i.height) for i in images),
        output_image_tokens=per_image * n,
    )


def text_usage(prompt: str, images: Sequence[InputImage], text: str) -> Usage:
    """The usage of a request that reads ``images`` and answers ``text`` instead of images."""
    return Usage(
        input_text_tokens=len(_TOKEN.findall(prompt)),
        input_image_tokens=sum(input_image_tokens(i.width, i.height) for i in images),
        output_text_tokens=len(_TOKEN.findall(text)),
    )


def input_image_tokens(width: int, height: int) -> int:
    """The input tokens one ``width`` × ``height`` image counts; see the module docstring."""
    scale = min(1.0, _FIT / max(width, height))
    scale *= min(1.0, _SHORT_SIDE / (min(width, height) * scale))
    # Rounding first keeps float noise (767.9999…) from adding a tile.
    tiles = math.ceil(round(width * scale, 6) / _TILE) * math.ceil(round(height * scale, 6) / _TILE)
    return _INPUT_BASE + _INPUT_PER_TILE * tiles
