"""The ``local`` provider behind the adapter interface: generate, stream, usage, the event loop."""

from __future__ import annotations

import asyncio
import threading
from dataclasses import replace
from io import BytesIO
from typing import Any

import pytest
from PIL import Image

from imagegate.core.requests import ImageRequest, ImageResult, OutputFormat, PartialImage, Usage
from imagegate.core.upstream import ImageProvider, ProviderContext
from imagegate.providers.local import LocalProvider
from imagegate.providers.local import provider as local_provider
from imagegate.providers.local.usage import estimate_usage

SIZES = [
    (256, 256),
    (512, 512),
    (1024, 1024),
    (1536, 1024),
    (1024, 1536),
    (1792, 1024),
    (1024, 1792),
]
FORMATS: list[OutputFormat] = ["png", "jpeg", "webp"]
PIL_NAMES = {"png": "PNG", "jpeg": "JPEG", "webp": "WEBP"}
CTX = ProviderContext(http=None, request_id="req-test", upstream_model="sketch")


def request(
    prompt: str = "a red house under a yellow sun by the blue sea", **changes: object
) -> ImageRequest:
    base = ImageRequest(
        operation="generate",
        model="sketch",
        prompt=prompt,
        n=1,
        width=256,
        height=256,
        quality="auto",
        output_format="png",
        background="auto",
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def decode(data: bytes) -> Image.Image:
    image = Image.open(BytesIO(data))
    image.load()
    return image


def test_is_an_image_provider_needing_no_credentials() -> None:
    provider = LocalProvider()
    assert isinstance(provider, ImageProvider)
    assert provider.name == "local"
    assert provider.has_credentials({})


async def test_generate_returns_n_distinct_images_with_usage() -> None:
    req = request(n=3, quality="low")
    result = await LocalProvider().generate(req, CTX)
    assert len(result.images) == 3
    assert len({image.data for image in result.images}) == 3
    for image in result.images:
        assert (image.output_format, image.width, image.height) == ("png", 256, 256)
        assert image.revised_prompt is None
        assert decode(image.data).size == (256, 256)
    assert result.usage == estimate_usage(req.prompt, 256, 256, "low", 3)
    assert (result.background, result.quality) == ("opaque", "low")


async def test_generate_is_deterministic_per_seed() -> None:
    provider = LocalProvider()
    first = await provider.generate(request(n=2, extras={"seed": 7}), CTX)
    again = await provider.generate(request(n=2, extras={"seed": 7}), CTX)
    other = await provider.generate(request(n=2, extras={"seed": 8}), CTX)
    default = await provider.generate(request(n=2), CTX)
    zero = await provider.generate(request(n=2, extras={"seed": 0}), CTX)
    assert [i.data for i in first.images] == [i.data for i in again.images]
    assert [i.data for i in first.images] != [i.data for i in other.images]
    assert [i.data for i in default.images] == [i.data for i in zero.images]


async def test_a_non_integer_seed_is_refused() -> None:
    with pytest.raises(ValueError, match="seed"):
        await LocalProvider().generate(request(extras={"seed": 1.5}), CTX)


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("size", SIZES, ids=[f"{w}x{h}" for w, h in SIZES])
async def test_every_size_and_format(size: tuple[int, int], fmt: OutputFormat) -> None:
    width, height = size
    result = await LocalProvider().generate(
        request(width=width, height=height, output_format=fmt), CTX
    )
    (image,) = result.images
    decoded = decode(image.data)
    assert decoded.format == PIL_NAMES[fmt]
    assert decoded.size == size
    assert (image.width, image.height, image.output_format) == (width, height, fmt)


@pytest.mark.parametrize("fmt", ["png", "webp"])
async def test_transparent_background(fmt: OutputFormat) -> None:
    req = request("a red circle", background="transparent", output_format=fmt)
    result = await LocalProvider().generate(req, CTX)
    decoded = decode(result.images[0].data).convert("RGBA")
    assert result.background == "transparent"
    assert decoded.getpixel((0, 0))[3] == 0  # type: ignore[index]
    assert decoded.getpixel((128, 128))[3] == 255  # type: ignore[index]


async def test_output_compression_is_applied() -> None:
    provider = LocalProvider()
    loose = await provider.generate(request(output_format="jpeg", output_compression=0), CTX)
    tight = await provider.generate(request(output_format="jpeg", output_compression=90), CTX)
    assert len(tight.images[0].data) < len(loose.images[0].data)


@pytest.mark.parametrize(("n", "partials"), [(1, 0), (1, 1), (2, 2), (3, 3)])
async def test_stream_yields_partials_then_one_result(n: int, partials: int) -> None:
    req = request(n=n, partial_images=partials, output_format="webp")
    events = [event async for event in LocalProvider().stream(req, CTX)]
    *previews, final = events
    assert isinstance(final, ImageResult)
    assert [(p.image_index, p.partial_index) for p in previews if isinstance(p, PartialImage)] == [
        (index, partial) for index in range(n) for partial in range(partials)
    ]
    assert len(previews) == n * partials
    for preview in previews:
        assert isinstance(preview, PartialImage)
        assert decode(preview.image.data).format == "WEBP"
        assert preview.image.data not in {image.data for image in final.images}
    generated = await LocalProvider().generate(req, CTX)
    assert [i.data for i in final.images] == [i.data for i in generated.images]
    assert final.usage == generated.usage


async def test_rendering_does_not_block_the_event_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each image is drawn in a worker thread, and the loop answers while it is drawn (proved
    by what runs where, not by a clock)."""
    loop = asyncio.get_running_loop()
    loop_thread = threading.get_ident()
    drawn_on: list[int] = []
    original = local_provider._render_one

    async def ping() -> bool:
        return True

    def render_one(*args: Any) -> Any:
        drawn_on.append(threading.get_ident())
        assert drawn_on[-1] != loop_thread, "an image was drawn on the event loop"
        assert asyncio.run_coroutine_threadsafe(ping(), loop).result(timeout=30)
        return original(*args)

    monkeypatch.setattr(local_provider, "_render_one", render_one)
    req = request("a forest, mountains, clouds and the sea", n=4, width=1792, height=1024)
    result = await LocalProvider().generate(req, CTX)
    assert len(result.images) == 4
    assert len(drawn_on) == 4


# --- usage --------------------------------------------------------------------------------


def test_usage_counts_words_and_punctuation() -> None:
    usage = estimate_usage("a red house, by the sea!", 1024, 1024, "high", 2)
    assert usage == Usage(input_text_tokens=8, output_image_tokens=2 * 4160)
    assert usage.total_tokens == 8 + 8320


@pytest.mark.parametrize(
    ("quality", "size", "tokens"),
    [
        ("low", (1024, 1024), 272),
        ("medium", (1024, 1024), 1056),
        ("high", (1024, 1024), 4160),
        ("auto", (1024, 1024), 1056),
        ("low", (1024, 1536), 408),
        ("medium", (1536, 1024), 1584),
        ("high", (1024, 1536), 6240),
        ("low", (256, 256), 17),
        ("medium", (1792, 1024), 1848),
    ],
)
def test_image_tokens_scale_with_area_from_gpt_image_1(
    quality: str, size: tuple[int, int], tokens: int
) -> None:
    assert estimate_usage("x", *size, quality, 1).output_image_tokens == tokens
    assert estimate_usage("x", *size, quality, 3).output_image_tokens == 3 * tokens
