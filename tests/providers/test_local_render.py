"""Pixels from the local ``sketch`` renderer: determinism, colours, transparency, stages."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from PIL import Image

from imagegate.providers.local.draw import Rendered, render

SIZES = [
    (256, 256),
    (512, 512),
    (1024, 1024),
    (1536, 1024),
    (1024, 1536),
    (1792, 1024),
    (1024, 1792),
]
Pixel = tuple[int, ...]


def draw(
    prompt: str,
    size: tuple[int, int] = (512, 512),
    *,
    seed: int = 0,
    variant: int = 0,
    transparent: bool = False,
    stages: int = 0,
) -> Rendered:
    width, height = size
    return render(
        prompt, width, height, seed=seed, variant=variant, transparent=transparent, stages=stages
    )


def pixels(image: Image.Image) -> list[Pixel]:
    """Every pixel as a tuple of band values (works on any Pillow version)."""
    data, bands = image.tobytes(), len(image.getbands())
    return [tuple(data[i : i + bands]) for i in range(0, len(data), bands)]


def share(
    image: Image.Image, box: tuple[float, float, float, float], test: Callable[[Pixel], bool]
) -> float:
    """The fraction of pixels in ``box`` (fractions of the image) that pass ``test``."""
    width, height = image.size
    crop = image.crop(
        (int(box[0] * width), int(box[1] * height), int(box[2] * width), int(box[3] * height))
    )
    sample = crop.resize((min(64, crop.width), min(64, crop.height)), Image.Resampling.NEAREST)
    values = pixels(sample)
    return sum(1 for pixel in values if test(pixel)) / len(values)


def reddish(pixel: Pixel) -> bool:
    r, g, b = pixel[:3]
    return r > 170 and g < 90 and b < 90


def bluish(pixel: Pixel) -> bool:
    r, g, b = pixel[:3]
    return b > r + 60 and b > g + 40


def greenish(pixel: Pixel) -> bool:
    r, g, b = pixel[:3]
    return g > r + 40 and g > b + 30


def yellowish(pixel: Pixel) -> bool:
    r, g, b = pixel[:3]
    return r > 200 and g > 170 and b < 120


# --- determinism --------------------------------------------------------------------------


@pytest.mark.parametrize("transparent", [False, True])
def test_same_inputs_give_identical_pixels(transparent: bool) -> None:
    prompt = "a red house under a yellow sun by the blue sea with trees, flowers and 'hi'"
    one = draw(prompt, transparent=transparent, stages=2)
    two = draw(prompt, transparent=transparent, stages=2)
    assert one.final.tobytes() == two.final.tobytes()
    assert [s.tobytes() for s in one.stages] == [s.tobytes() for s in two.stages]


@pytest.mark.parametrize("prompt", ["stars over the sea", "a red square", "", "qwerty"])
def test_variant_and_seed_change_the_picture(prompt: str) -> None:
    base = draw(prompt).final.tobytes()
    assert draw(prompt, variant=1).final.tobytes() != base
    assert draw(prompt, seed=1).final.tobytes() != base
    assert draw(prompt, variant=1).final.tobytes() != draw(prompt, variant=2).final.tobytes()


# --- sizes and modes ----------------------------------------------------------------------


@pytest.mark.parametrize("size", [*SIZES, (64, 64), (64, 777), (999, 65)])
def test_every_size_renders_at_that_size(size: tuple[int, int]) -> None:
    prompt = 'sun moon stars clouds birds rainbow mountains sea boat house trees flowers "Text"'
    opaque = draw(prompt, size).final
    clear = draw(prompt, size, transparent=True).final
    assert (opaque.size, opaque.mode) == (size, "RGB")
    assert (clear.size, clear.mode) == (size, "RGBA")


# --- colours and subjects -----------------------------------------------------------------


def test_a_red_square_is_red_in_the_middle() -> None:
    image = draw("a red square").final
    assert share(image, (0.4, 0.4, 0.6, 0.6), reddish) > 0.95
    assert share(image, (0.0, 0.0, 0.1, 0.1), reddish) == 0


@pytest.mark.parametrize(("word", "test"), [("blue", bluish), ("green", greenish)])
def test_the_sea_takes_its_colour(word: str, test: Callable[[Pixel], bool]) -> None:
    image = draw(f"the {word} sea", (1024, 1024)).final
    assert share(image, (0.0, 0.85, 1.0, 1.0), test) > 0.8


def test_red_house_yellow_sun_blue_sea() -> None:
    image = draw("a red house under a yellow sun by the blue sea", (1024, 1024)).final
    assert share(image, (0, 0, 1, 0.45), yellowish) > 0.01
    assert share(image, (0, 0.4, 1, 1), reddish) > 0.02
    assert share(image, (0, 0.85, 1, 1), bluish) > 0.25


def test_unknown_prompt_still_shows_its_colour() -> None:
    image = draw("an abstract feeling in green").final
    assert share(image, (0, 0, 1, 1), greenish) > 0.5
    assert len(set(pixels(image.resize((32, 32))))) > 20


def test_quoted_text_draws_a_banner() -> None:
    plain = draw("a blue circle", transparent=True).final
    text = draw('a blue circle "HELLO"', transparent=True).final
    band = (0.05, 0.78, 0.95, 0.92)
    assert share(plain, band, lambda p: p[3] > 0) == 0
    assert share(text, band, lambda p: p[3] > 0) > 0.05
    short = draw('"Hi"', transparent=True).final.getchannel("A").getbbox()
    long = draw('"Hello there, everyone"', transparent=True).final.getchannel("A").getbbox()
    assert short is not None
    assert long is not None
    assert long[2] - long[0] > 2 * (short[2] - short[0])
    assert abs((long[0] + long[2]) / 2 - 256) < 8


# --- transparency -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "prompt", ["a red circle", "a house with trees under the sun", '"Hi"', "zzz"]
)
def test_transparent_background_only_where_nothing_is_drawn(prompt: str) -> None:
    image = draw(prompt, (512, 512), transparent=True).final
    alpha = image.getchannel("A")
    corners = [(0, 0), (511, 0), (0, 511), (511, 511)]
    if prompt != "zzz":  # abstract shapes may land anywhere
        assert [alpha.getpixel(corner) for corner in corners] == [0, 0, 0, 0]
    assert alpha.getextrema() == (0, 255)


def test_transparent_subject_is_opaque_and_coloured() -> None:
    image = draw("a red circle", transparent=True).final
    assert share(image, (0.45, 0.45, 0.55, 0.55), lambda p: p[3] == 255 and reddish(p)) == 1


# --- stages -------------------------------------------------------------------------------


@pytest.mark.parametrize("count", [0, 1, 2, 3])
def test_stages_are_progressive_snapshots(count: int) -> None:
    result = draw("a house, trees, flowers, the sun and clouds", stages=count)
    assert len(result.stages) == count
    previous = None
    for stage in result.stages:
        assert (stage.size, stage.mode) == (result.final.size, "RGB")
        assert stage.tobytes() != result.final.tobytes()
        assert stage.tobytes() != previous
        previous = stage.tobytes()


def test_transparent_stages_are_rgba_and_grow() -> None:
    result = draw("a red circle, a blue square and a heart", transparent=True, stages=2)
    drawn = [
        sum(1 for a in s.getchannel("A").tobytes() if a) for s in (*result.stages, result.final)
    ]
    assert all(stage.mode == "RGBA" for stage in result.stages)
    assert drawn[0] < drawn[1] < drawn[2]


def test_stages_do_not_change_the_final_image() -> None:
    prompt = "mountains, a lake and a boat"
    assert draw(prompt, stages=3).final.tobytes() == draw(prompt).final.tobytes()
