"""Costs follow each model's price rules to the cent."""

from __future__ import annotations

from decimal import Decimal

import pytest

from imagegate.core.catalog import PricingSpec, load_catalog
from imagegate.core.pricing import estimate_usage, price, quote
from imagegate.core.requests import ImageRequest, Usage
from imagegate.providers.registry import ProviderRegistry

CATALOG = load_catalog(ProviderRegistry())


def cost_of(
    spec: PricingSpec,
    *,
    usage: Usage | None,
    images: int,
    quality: str,
    size: str,
    action: str | None = None,
    tier: str | None = None,
) -> Decimal:
    return price(spec, usage, images, quality, size, action, tier).amount


def pricing(model: str) -> PricingSpec:
    entry = CATALOG.resolve(model)
    assert entry is not None
    return entry.spec.pricing


def request(**fields: object) -> ImageRequest:
    values: dict[str, object] = {
        "operation": "generate",
        "model": "gpt-image-1",
        "prompt": "a cat",
        "n": 1,
        "width": 1024,
        "height": 1024,
        "quality": "high",
        "output_format": "png",
        "background": "auto",
    }
    values.update(fields)
    return ImageRequest(**values)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("quality", "size", "output_tokens", "expected"),
    [
        ("low", "1024x1024", 272, "0.01088"),
        ("medium", "1024x1024", 1056, "0.04224"),
        ("high", "1024x1024", 4160, "0.16640"),
        ("high", "1536x1024", 6240, "0.24960"),
        ("medium", "1024x1536", 1584, "0.06336"),
    ],
)
def test_gpt_image_1_tokens(quality: str, size: str, output_tokens: int, expected: str) -> None:
    usage = Usage(input_text_tokens=0, output_image_tokens=output_tokens)
    cost = cost_of(pricing("gpt-image-1"), usage=usage, images=1, quality=quality, size=size)
    assert cost == Decimal(expected)


def test_gpt_image_1_text_and_image_inputs() -> None:
    usage = Usage(input_text_tokens=50, input_image_tokens=1000, output_image_tokens=1056)
    cost = cost_of(
        pricing("gpt-image-1"), usage=usage, images=1, quality="medium", size="1024x1024"
    )
    assert cost == Decimal("0.000250") + Decimal("0.010") + Decimal("0.04224")


@pytest.mark.parametrize(
    ("model", "quality", "size", "images", "expected"),
    [
        ("dall-e-3", "standard", "1024x1024", 1, "0.04"),
        ("dall-e-3", "hd", "1792x1024", 1, "0.12"),
        ("dall-e-2", "standard", "256x256", 3, "0.048"),
        ("dall-e-2", "standard", "1024x1024", 2, "0.04"),
    ],
)
def test_per_image_prices(model: str, quality: str, size: str, images: int, expected: str) -> None:
    cost = cost_of(pricing(model), usage=None, images=images, quality=quality, size=size)
    assert cost == Decimal(expected)


def test_gemini_style_token_usage() -> None:
    gemini = PricingSpec(text_input_per_mtok=0.30, image_output_per_mtok=30.0)
    usage = Usage(input_text_tokens=10, output_image_tokens=1290)
    cost = cost_of(gemini, usage=usage, images=1, quality="auto", size="1024x1024")
    assert cost == Decimal("0.000003") + Decimal("0.0387")


def test_midjourney_actions_by_tier() -> None:
    mj = PricingSpec(per_action={"IMAGINE": 0.05, "relax:IMAGINE": 0.02, "UPSCALE": 0.01})
    assert cost_of(
        mj, usage=None, images=1, quality="", size="", action="IMAGINE", tier="fast"
    ) == Decimal("0.05")
    assert cost_of(
        mj, usage=None, images=1, quality="", size="", action="IMAGINE", tier="relax"
    ) == Decimal("0.02")
    assert cost_of(
        mj, usage=None, images=1, quality="", size="", action="UPSCALE", tier="turbo"
    ) == Decimal("0.01")
    assert cost_of(mj, usage=None, images=0, quality="", size="", action="IMAGINE") == 0


def test_nothing_delivered_costs_nothing() -> None:
    per_request = PricingSpec(per_request=0.1)
    assert cost_of(per_request, usage=None, images=0, quality="", size="") == 0


def test_quote_estimates_tokens_from_the_request() -> None:
    estimate = estimate_usage(request(prompt="x" * 40, quality="medium", n=2))
    assert (estimate.input_text_tokens, estimate.output_image_tokens) == (10, 2 * 1056)
    price = quote(pricing("gpt-image-1"), request(quality="high", n=2))
    assert price.amount == Decimal("0.000010") + Decimal("0.33280")
    assert price.breakdown["image_count"] == 2
