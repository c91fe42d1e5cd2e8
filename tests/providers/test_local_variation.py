"""Variations by the local ``sketch`` renderer: alike to their input, unlike each other."""

from __future__ import annotations

import itertools
import math
import random

import pytest
from PIL import Image, ImageDraw, ImageOps, ImageStat

from imagegate.core.requests import ImageRequest, ImageResult, PartialImage
from imagegate.providers.local import LocalProvider
from imagegate.providers.local.palette import dominant_colours
from imagegate.providers.local.usage import input_image_tokens
from imagegate.providers.local.variation import render_variation
from tests.providers.inputs_kit import (
    CTX,
    as_input,
    decode_image,
    edit_request,
    mean_abs_diff,
    photo,
)

SIZE = (384, 384)


def variation(source: Image.Image, **changes: object) -> ImageRequest:
    return edit_request((as_input(source),), operation="variation", prompt="", **changes)


async def varied(request: ImageRequest) -> list[Image.Image]:
    result = await LocalProvider().generate(request, CTX)
    return [decode_image(image.data) for image in result.images]


def layout_correlation(a: Image.Image, b: Image.Image) -> float:
    """Pearson correlation of 16×16 grey thumbnails: how alike the coarse layouts are."""
    ta, tb = (list(i.convert("L").resize((16, 16), Image.Resampling.BOX).tobytes()) for i in (a, b))
    ma, mb = sum(ta) / len(ta), sum(tb) / len(tb)
    cov = sum((x - ma) * (y - mb) for x, y in zip(ta, tb, strict=True))
    spread = math.sqrt(sum((x - ma) ** 2 for x in ta) * sum((y - mb) ** 2 for y in tb))
    return cov / spread


def mean_colour_shift(a: Image.Image, b: Image.Image) -> float:
    """The largest per-channel difference between the two images' mean colours."""
    ma, mb = (ImageStat.Stat(i.convert("RGB")).mean for i in (a, b))
    return max(abs(x - y) for x, y in zip(ma, mb, strict=True))


def similar(a: Image.Image, b: Image.Image) -> bool:
    """The similarity the variations promise: same layout, same overall colour."""
    return layout_correlation(a, b) > 0.9 and mean_colour_shift(a, b) < 10


def test_the_similarity_measure_tells_different_pictures_apart() -> None:
    source = photo(SIZE)
    assert similar(source, source)
    assert not similar(source, ImageOps.flip(source))
    assert not similar(source, photo(SIZE, seed=9).rotate(90))
    assert not similar(source, Image.blend(source, Image.new("RGB", SIZE, (255, 0, 0)), 0.2))


@pytest.mark.parametrize("seed", [0, 1, 2])
async def test_n_variations_are_alike_to_the_input_but_not_to_each_other(seed: int) -> None:
    source = photo(SIZE, seed=seed)
    images = await varied(variation(source, n=3))
    assert len({image.tobytes() for image in images}) == 3
    for image in images:
        assert image.size == SIZE
        assert image.mode == "RGB"
        assert similar(image, source), (layout_correlation(image, source), seed)
        assert mean_abs_diff(image, source) > 3
    for a, b in itertools.combinations(images, 2):
        assert mean_abs_diff(a, b) > 1


async def test_variations_are_deterministic_and_follow_the_seed() -> None:
    source = photo(SIZE)
    first = await varied(variation(source, n=2, extras={"seed": 5}))
    again = await varied(variation(source, n=2, extras={"seed": 5}))
    other = await varied(variation(source, n=2, extras={"seed": 6}))
    assert [i.tobytes() for i in first] == [i.tobytes() for i in again]
    assert first[0].tobytes() != other[0].tobytes()
    assert first[1].tobytes() != other[1].tobytes()


async def test_a_different_input_gives_a_different_variation() -> None:
    one = await varied(variation(photo(SIZE, seed=1)))
    two = await varied(variation(photo(SIZE, seed=2)))
    assert one[0].tobytes() != two[0].tobytes()


async def test_a_flat_input_still_gets_new_detail() -> None:
    flat = Image.new("RGB", SIZE, (200, 120, 40))
    (image,) = await varied(variation(flat))
    assert mean_colour_shift(image, flat) < 10
    assert len(set(image.convert("RGB").resize((32, 32)).tobytes())) > 8


async def test_the_palette_is_kept() -> None:
    source = photo(SIZE)
    (image,) = await varied(variation(source))
    theirs = dominant_colours(source, 4)
    ours = dominant_colours(image, 8)
    for colour in theirs[:2]:
        nearest = min(sum(abs(a - b) for a, b in zip(colour, o, strict=True)) for o in ours)
        assert nearest < 60


async def test_output_size_follows_the_request() -> None:
    source = photo((300, 200))
    (image,) = await varied(variation(source, width=256, height=256))
    assert image.size == (256, 256)
    assert similar(image, source.resize((256, 256)))


async def test_transparent_variation_keeps_the_inputs_alpha() -> None:
    source = photo(SIZE).convert("RGBA")
    alpha = Image.new("L", SIZE, 0)
    ImageDraw.Draw(alpha).ellipse((40, 40, 340, 340), fill=255)
    source.putalpha(alpha)
    result = await LocalProvider().generate(variation(source, background="transparent"), CTX)
    image = decode_image(result.images[0].data)
    assert result.background == "transparent"
    assert image.mode == "RGBA"
    assert image.getchannel("A").tobytes() == alpha.tobytes()


async def test_streaming_variations() -> None:
    source = photo(SIZE)
    request = variation(source, n=2, partial_images=2, output_format="webp")
    events = [event async for event in LocalProvider().stream(request, CTX)]
    *previews, final = events
    assert isinstance(final, ImageResult)
    assert [(p.image_index, p.partial_index) for p in previews if isinstance(p, PartialImage)] == [
        (0, 0),
        (0, 1),
        (1, 0),
        (1, 1),
    ]
    assert len(final.images) == 2
    assert {decode_image(i.data).format for i in final.images} == {"WEBP"}
    generated = await LocalProvider().generate(request, CTX)
    assert [i.data for i in final.images] == [i.data for i in generated.images]


async def test_variation_usage_counts_the_input() -> None:
    result = await LocalProvider().generate(variation(photo(SIZE), n=2), CTX)
    assert result.usage is not None
    assert result.usage.input_text_tokens == 0
    assert result.usage.input_image_tokens == input_image_tokens(*SIZE) > 0


def test_render_variation_directly_is_reproducible() -> None:
    source = photo((128, 96)).convert("RGBA")
    one = render_variation(source, random.Random(1), stages=2)
    two = render_variation(source, random.Random(1), stages=2)
    assert one.final.tobytes() == two.final.tobytes()
    assert one.stages[0].tobytes() == source.tobytes()
    assert len(one.stages) == 2
