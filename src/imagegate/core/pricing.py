"""Prices from a model's rules: the quote before a call and the cost of what was delivered."""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from imagegate.core.catalog import PricingSpec
from imagegate.core.requests import ImageRequest, Usage

_MILLION = Decimal(1_000_000)
OUTPUT_TOKENS_1024 = {"low": 272, "medium": 1056, "high": 4160}
"""gpt-image output tokens for a 1024×1024 image by quality; other sizes scale by area."""
_QUALITY_ALIASES = {"auto": "medium", "standard": "medium", "hd": "high"}


@dataclass(frozen=True, slots=True)
class Price:
    amount: Decimal
    breakdown: dict[str, Any] = field(default_factory=dict)


def price(
    pricing: PricingSpec,
    usage: Usage | None,
    images: int,
    quality: str,
    size: str,
    action: str | None = None,
    tier: str | None = None,
) -> Price:
    """USD for ``images`` delivered images, and how it was made up: tokens when the model is
    priced by token and usage is known, else the per-image price for ``quality:size``, plus
    per-request and per-action prices (charged only when something was delivered)."""
    parts: dict[str, Decimal] = {}
    if usage is not None and pricing.image_output_per_mtok is not None:
        image_in = pricing.image_input_per_mtok or pricing.text_input_per_mtok or 0
        parts["text_input"] = usage.input_text_tokens * _d(pricing.text_input_per_mtok) / _MILLION
        parts["image_input"] = usage.input_image_tokens * _d(image_in) / _MILLION
        parts["output"] = usage.output_tokens * _d(pricing.image_output_per_mtok) / _MILLION
    elif pricing.per_image:
        each = pricing.per_image.get(f"{quality}:{size}")
        parts["per_image"] = (
            _d(each if each is not None else max(pricing.per_image.values())) * images
        )
    if images and pricing.per_request is not None:
        parts["request"] = _d(pricing.per_request)
    if images and action and pricing.per_action:
        found = pricing.per_action.get(f"{tier}:{action}", pricing.per_action.get(action))
        parts["action"] = _d(found)
    total = sum(parts.values(), Decimal(0))
    return Price(total, {name: float(value) for name, value in parts.items()})


def estimate_usage(request: ImageRequest, unseen_inputs: int = 0) -> Usage:
    """Token usage a gpt-image-style model would report for ``request`` (for quotes): ~4
    characters per text token, 85 + 170 per 512-pixel tile per input image (``unseen_inputs``
    more images counted as 1024×1024), and the gpt-image output table scaled by area."""
    text = math.ceil(len(request.prompt) / 4)
    image_in = sum(_input_tokens(image.width, image.height) for image in request.images)
    image_in += unseen_inputs * _input_tokens(1024, 1024)
    quality = _QUALITY_ALIASES.get(request.quality, request.quality)
    per_image = OUTPUT_TOKENS_1024.get(quality, OUTPUT_TOKENS_1024["medium"])
    output = math.ceil(per_image * request.width * request.height / (1024 * 1024)) * request.n
    return Usage(input_text_tokens=text, input_image_tokens=image_in, output_image_tokens=output)


def _input_tokens(width: int, height: int) -> int:
    tiles = math.ceil(width / 512) * math.ceil(height / 512)
    return 85 + 170 * tiles


def quote(
    pricing: PricingSpec,
    request: ImageRequest,
    action: str | None = None,
    tier: str | None = None,
    unseen_inputs: int = 0,
) -> Price:
    """What ``request`` will cost if every image it asks for is delivered."""
    by_token = pricing.image_output_per_mtok is not None
    usage = estimate_usage(request, unseen_inputs) if by_token else None
    images = 0 if request.operation == "describe" else request.n
    result = price(pricing, usage, max(images, 1), request.quality, request.size, action, tier)
    if usage is not None:
        result.breakdown.update(
            input_text_tokens=usage.input_text_tokens,
            input_image_tokens=usage.input_image_tokens,
            output_tokens=usage.output_tokens,
        )
    result.breakdown["image_count"] = images
    return result


@functools.lru_cache(maxsize=4096)
def _d(value: float | None) -> Decimal:
    # Cached: a catalogue holds few distinct prices, and the conversion runs on every request.
    return Decimal(str(value)) if value is not None else Decimal(0)
