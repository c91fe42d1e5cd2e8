"""Cost of delivered work from a model's price rules."""

from __future__ import annotations

from decimal import Decimal

from imagegate.core.catalog import PricingSpec
from imagegate.core.requests import Usage

_MILLION = Decimal(1_000_000)


def cost_of(
    pricing: PricingSpec, *, usage: Usage | None, images: int, quality: str, size: str
) -> Decimal:
    """USD for ``images`` delivered images: tokens when the model is priced by token and reported
    usage, else the per-image price for ``quality:size``, plus any per-request price."""
    total = Decimal(0)
    if usage is not None and pricing.image_output_per_mtok is not None:
        image_in = pricing.image_input_per_mtok or pricing.text_input_per_mtok or 0
        total += (
            Decimal(usage.input_text_tokens) * _d(pricing.text_input_per_mtok)
            + Decimal(usage.input_image_tokens) * _d(image_in)
            + Decimal(usage.output_tokens) * _d(pricing.image_output_per_mtok)
        ) / _MILLION
    elif pricing.per_image:
        price = pricing.per_image.get(f"{quality}:{size}")
        if price is None:
            price = max(pricing.per_image.values())
        total += _d(price) * images
    if pricing.per_request is not None and images:
        total += _d(pricing.per_request)
    return total


def _d(value: float | None) -> Decimal:
    return Decimal(str(value)) if value is not None else Decimal(0)
