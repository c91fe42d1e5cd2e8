"""Edits by the local ``sketch`` renderer, checked on pixels: masks, fidelity, references."""

from __future__ import annotations

import threading
from dataclasses import replace

import pytest
from PIL import Image, ImageDraw

from imagegate.core.requests import ImageRequest, ImageResult, OutputFormat, PartialImage
from imagegate.providers.local import LocalProvider
from imagegate.providers.local import provider as provider_module
from imagegate.providers.local.inputs import decode, decode_keep, fit, prepare
from imagegate.providers.local.masked import feather
from imagegate.providers.local.usage import input_image_tokens
from tests.providers.inputs_kit import (
    CTX,
    as_input,
    changed,
    count,
    decode_image,
    edit_request,
    ellipse_mask,
    mean_abs_diff,
    photo,
    pixels,
    reddish,
    where,
)

SIZE = (512, 512)
HOLE = (140, 120, 400, 380)
INNER = (170, 150, 370, 350)
"""``HOLE`` shrunk by 30 px on every side: well past the feathering ramp."""


def masked(prompt: str = "a red circle", **changes: object) -> ImageRequest:
    source = as_input(photo(SIZE))
    mask = as_input(ellipse_mask(SIZE, HOLE))
    return edit_request((source,), prompt=prompt, mask=mask, **changes)


async def edited(request: ImageRequest) -> Image.Image:
    result = await LocalProvider().generate(request, CTX)
    return decode_image(result.images[0].data)


def inner_area(size: tuple[int, int] = SIZE) -> Image.Image:
    area = Image.new("L", size, 0)
    ImageDraw.Draw(area).ellipse(INNER, fill=255)
    return area


# --- masked edits -------------------------------------------------------------------------


async def test_masked_edit_changes_only_the_masked_area() -> None:
    source = photo(SIZE)
    out = (await edited(masked())).convert("RGB")
    keep = ellipse_mask(SIZE, HOLE).getchannel("A")
    diff = changed(out, source)
    assert count(diff, within=where(keep, lambda a: a == 255)) == 0
    assert count(diff, within=inner_area()) > 0.9 * count(inner_area())


async def test_red_circle_lands_inside_the_mask_and_nowhere_else() -> None:
    out = (await edited(masked("a red circle"))).convert("RGB")
    keep = ellipse_mask(SIZE, HOLE).getchannel("A")
    red = [reddish(p) for p in pixels(out)]
    inside = [a < 255 for a in keep.tobytes()]
    assert sum(r for r, i in zip(red, inside, strict=True) if i) > 0.15 * sum(inside)
    assert not any(r for r, i in zip(red, inside, strict=True) if not i)
    assert not any(reddish(p) for p in pixels(photo(SIZE)))


@pytest.mark.parametrize("prompt", ["remove it", "", "qwerty"])
async def test_masked_area_without_subjects_still_changes(prompt: str) -> None:
    flat = Image.new("RGB", SIZE, (90, 140, 200))
    mask = as_input(ellipse_mask(SIZE, HOLE))
    out = await edited(edit_request((as_input(flat),), prompt=prompt, mask=mask))
    inner = inner_area()
    assert count(changed(out.convert("RGB"), flat), within=inner) > 0.5 * count(inner)


async def test_masked_area_without_subjects_takes_the_prompts_colours() -> None:
    flat = Image.new("RGB", SIZE, (90, 140, 200))
    mask = as_input(ellipse_mask(SIZE, HOLE))
    out = await edited(edit_request((as_input(flat),), prompt="orange", mask=mask))
    middle = out.convert("RGB").crop(INNER).resize((1, 1), Image.Resampling.BOX)
    r, _, b = middle.getpixel((0, 0))  # type: ignore[misc]
    assert r > 180 and b < 150


async def test_free_prompt_colours_tone_the_area_around_subjects() -> None:
    grey = Image.new("RGB", SIZE, (128, 128, 128))
    mask = as_input(ellipse_mask(SIZE, HOLE))
    out = await edited(edit_request((as_input(grey),), prompt="a red circle and blue", mask=mask))
    inside = [
        p for p, a in zip(pixels(out), inner_area().tobytes(), strict=True) if a and not reddish(p)
    ]
    assert sum(p[2] - p[0] for p in inside) / len(inside) > 30


async def test_partial_mask_alpha_changes_partly() -> None:
    source = photo(SIZE)

    async def distance(alpha: int) -> float:
        mask = as_input(ellipse_mask(SIZE, HOLE, alpha=alpha))
        request = edit_request((as_input(source),), prompt="zzz", mask=mask)
        return mean_abs_diff((await edited(request)).crop(INNER), source.crop(INNER))

    full, half, none = await distance(0), await distance(128), await distance(255)
    assert none == 0
    assert 0.2 * full < half < 0.8 * full


async def test_a_mask_keeping_everything_returns_the_input() -> None:
    source = photo(SIZE)
    request = edit_request(
        (as_input(source),), mask=as_input(Image.new("RGBA", SIZE, (0, 0, 0, 255)))
    )
    assert (await edited(request)).convert("RGB").tobytes() == source.tobytes()


def test_feathering_ramps_inward_only() -> None:
    keep = ellipse_mask(SIZE, HOLE).getchannel("A")
    soft = feather(keep, 6)
    pairs = list(zip(keep.tobytes(), soft.tobytes(), strict=True))
    assert all(s == 255 for k, s in pairs if k == 255)
    assert count(where(soft, lambda s: s > 0), within=inner_area()) == 0
    ramp = [s for k, s in pairs if k == 0 and 0 < s < 255]
    assert len(ramp) > 1000
    assert max(ramp) <= 160


async def test_output_follows_the_requested_size() -> None:
    source, mask = photo((300, 200)), ellipse_mask((300, 200), (80, 40, 220, 160))
    request = edit_request(
        (as_input(source),), mask=as_input(mask), width=512, height=384, prompt="a blue star"
    )
    out = await edited(request)
    assert out.size == (512, 384)
    inputs = prepare(request)
    assert inputs.keep is not None
    diff = changed(out.convert("RGB"), inputs.base.convert("RGB"))
    assert count(diff, within=where(inputs.keep, lambda a: a == 255)) == 0
    assert count(diff) > 5000


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
async def test_a_large_input_is_fitted_down(fmt: str) -> None:
    source = photo((2048, 2048))
    request = edit_request(
        (as_input(source, fmt),),
        mask=as_input(ellipse_mask((2048, 2048), (600, 600, 1400, 1400))),
        width=1024,
        height=1024,
    )
    out = await edited(request)
    assert out.size == (1024, 1024)
    corner = mean_abs_diff(
        out.crop((0, 0, 200, 200)), source.resize((1024, 1024)).crop((0, 0, 200, 200))
    )
    assert corner < 6


# --- edits without a mask -----------------------------------------------------------------


async def test_unmasked_edit_draws_over_the_input_and_fidelity_matters() -> None:
    source = photo(SIZE)
    unset = edit_request((as_input(source),), prompt="a red house under a yellow sun")
    low = await edited(replace(unset, input_fidelity="low"))
    high = await edited(replace(unset, input_fidelity="high"))
    assert (await edited(unset)).tobytes() == low.tobytes()
    assert mean_abs_diff(low, source) > 5
    assert 1 < mean_abs_diff(high, source) < 0.7 * mean_abs_diff(low, source)
    assert sum(reddish(p) for p in pixels(low)) > 0.01 * SIZE[0] * SIZE[1]


@pytest.mark.parametrize("prompt", ["", "make it better", "the sky"])
async def test_unmasked_edit_without_subjects_still_changes(prompt: str) -> None:
    source = photo(SIZE)
    for fidelity in ("high", "low"):
        out = await edited(
            edit_request((as_input(source),), prompt=prompt, input_fidelity=fidelity)
        )
        assert mean_abs_diff(out, source) > 1


async def test_unmasked_edit_draws_the_named_colour_without_tinting_the_rest() -> None:
    grey = Image.new("RGB", SIZE, (128, 128, 128))
    out = (await edited(edit_request((as_input(grey),), prompt="a purple house"))).convert("RGB")
    purple = [p for p in pixels(out) if p[2] > p[1] + 40 and p[0] > p[1] + 20]
    assert len(purple) > 0.01 * SIZE[0] * SIZE[1]
    untouched = sum(p == (128, 128, 128) for p in pixels(out))
    assert untouched > 0.6 * SIZE[0] * SIZE[1]  # no global tint: the grey stays grey


# --- references ---------------------------------------------------------------------------


@pytest.mark.parametrize("with_mask", [False, True])
async def test_a_reference_image_changes_the_output(with_mask: bool) -> None:
    source = as_input(photo(SIZE))
    mask = as_input(ellipse_mask(SIZE, HOLE)) if with_mask else None
    warm = as_input(Image.new("RGB", (200, 300), (250, 150, 30)))
    cool = as_input(Image.new("RGB", (200, 300), (30, 200, 120)))
    alone = await edited(edit_request((source,), prompt="a house", mask=mask))
    one = await edited(edit_request((source, warm), prompt="a house", mask=mask))
    other = await edited(edit_request((source, cool), prompt="a house", mask=mask))
    assert mean_abs_diff(one, other) > 0.5
    assert mean_abs_diff(one, alone) > 0.5
    if with_mask:
        keep = where(ellipse_mask(SIZE, HOLE).getchannel("A"), lambda a: a == 255)
        assert count(changed(one, other), within=keep) == 0


def near(pixel: tuple[int, ...], colour: tuple[int, int, int], reach: int = 30) -> bool:
    return sum(abs(a - b) for a, b in zip(pixel, colour, strict=False)) < reach


@pytest.mark.parametrize("with_mask", [False, True])
async def test_uncoloured_subjects_take_the_references_colours(with_mask: bool) -> None:
    orange = (250, 150, 30)
    source = as_input(photo(SIZE))
    mask = as_input(ellipse_mask(SIZE, HOLE)) if with_mask else None
    reference = as_input(Image.new("RGB", (200, 300), orange))
    alone = await edited(edit_request((source,), prompt="a house", mask=mask))
    referred = await edited(edit_request((source, reference), prompt="a house", mask=mask))
    assert not any(near(p, orange) for p in pixels(alone))
    area = inner_area() if with_mask else Image.new("L", SIZE, 255)
    matches = [near(p, orange) for p, a in zip(pixels(referred), area.tobytes(), strict=True) if a]
    assert sum(matches) > 0.01 * len(matches)


async def test_unmasked_edit_shows_references_as_insets() -> None:
    source = as_input(photo(SIZE))
    reference = as_input(Image.new("RGB", (64, 64), (250, 250, 0)))
    out = await edited(edit_request((source, reference), prompt="a red circle"))
    corner = out.crop((SIZE[0] * 3 // 4, SIZE[1] * 3 // 4, SIZE[0], SIZE[1]))
    yellow = [p for p in pixels(corner) if p == (250, 250, 0)]
    assert len(yellow) > 0.1 * corner.width * corner.height


async def test_every_reference_shows() -> None:
    source = as_input(photo(SIZE))
    refs = [as_input(Image.new("RGB", (64, 64), colour)) for colour in ((250, 0, 0), (0, 0, 250))]
    base = await edited(edit_request((source, *refs), prompt="a tree"))
    for index in range(2):
        swapped = list(refs)
        swapped[index] = as_input(Image.new("RGB", (64, 64), (250, 250, 0)))
        out = await edited(edit_request((source, *swapped), prompt="a tree"))
        assert mean_abs_diff(out, base) > 0.3


# --- transparency, formats, determinism -----------------------------------------------------


def half_clear(size: tuple[int, int] = SIZE) -> Image.Image:
    image = photo(size).convert("RGBA")
    alpha = Image.new("L", size, 255)
    ImageDraw.Draw(alpha).rectangle((0, 0, size[0] // 2 - 1, size[1]), fill=0)
    image.putalpha(alpha)
    return image


@pytest.mark.parametrize("with_mask", [False, True])
async def test_transparent_edit_keeps_the_inputs_alpha(with_mask: bool) -> None:
    source = half_clear()
    mask = as_input(ellipse_mask(SIZE, (20, 20, 200, 200))) if with_mask else None
    request = edit_request(
        (as_input(source),), prompt="a red circle", mask=mask, background="transparent"
    )
    result = await LocalProvider().generate(request, CTX)
    out = decode_image(result.images[0].data)
    assert result.background == "transparent"
    assert out.mode == "RGBA"
    before, after = source.getchannel("A").tobytes(), out.getchannel("A").tobytes()
    assert all(b >= a for a, b in zip(before, after, strict=True))
    clear_left = sum(1 for a in after[: SIZE[0] // 2] if a == 0)
    assert clear_left > 0
    assert sum(1 for a in after if a == 0) > 0.2 * len(after)
    if with_mask:
        keep = where(ellipse_mask(SIZE, (20, 20, 200, 200)).getchannel("A"), lambda a: a == 255)
        assert count(changed(out, source), within=keep) == 0


async def test_opaque_edit_of_a_transparent_input_is_flattened_onto_white() -> None:
    mask = as_input(ellipse_mask(SIZE, (300, 300, 500, 500)))
    out = await edited(edit_request((as_input(half_clear()),), prompt="a star", mask=mask))
    assert out.mode == "RGB"
    assert out.getpixel((2, SIZE[1] - 3)) == (255, 255, 255)
    assert out.getpixel((SIZE[0] - 3, 2)) == photo(SIZE).getpixel((SIZE[0] - 3, 2))


@pytest.mark.parametrize("fmt", ["png", "jpeg", "webp"])
async def test_edit_output_formats(fmt: OutputFormat) -> None:
    result = await LocalProvider().generate(masked(output_format=fmt, width=384, height=256), CTX)
    image = result.images[0]
    assert (image.output_format, image.width, image.height) == (fmt, 384, 256)
    assert decode_image(image.data).size == (384, 256)


async def test_edits_are_deterministic_per_seed_and_index() -> None:
    provider = LocalProvider()
    first = await provider.generate(masked(n=2, extras={"seed": 3}), CTX)
    again = await provider.generate(masked(n=2, extras={"seed": 3}), CTX)
    other = await provider.generate(masked(n=2, extras={"seed": 4}), CTX)
    assert [i.data for i in first.images] == [i.data for i in again.images]
    assert first.images[0].data != first.images[1].data
    assert [i.data for i in first.images] != [i.data for i in other.images]


# --- streaming, usage, threads ----------------------------------------------------------


@pytest.mark.parametrize(("n", "partials"), [(1, 0), (1, 2), (2, 3)])
async def test_streaming_an_edit_yields_partials_then_one_result(n: int, partials: int) -> None:
    request = masked(n=n, partial_images=partials)
    events = [event async for event in LocalProvider().stream(request, CTX)]
    *previews, final = events
    assert isinstance(final, ImageResult)
    assert all(isinstance(p, PartialImage) for p in previews)
    assert [(p.image_index, p.partial_index) for p in previews if isinstance(p, PartialImage)] == [
        (index, partial) for index in range(n) for partial in range(partials)
    ]
    first = [p for p in previews if isinstance(p, PartialImage) and p.partial_index == 0]
    for preview in first:
        assert decode_image(preview.image.data).tobytes() == photo(SIZE).tobytes()
    generated = await LocalProvider().generate(request, CTX)
    assert [i.data for i in final.images] == [i.data for i in generated.images]


async def test_edit_usage_counts_the_input_images() -> None:
    request = masked()
    reference = as_input(photo((1024, 1024)))
    result = await LocalProvider().generate(request, CTX)
    with_reference = await LocalProvider().generate(
        replace(request, images=(*request.images, reference)), CTX
    )
    assert result.usage is not None
    assert with_reference.usage is not None
    assert result.usage.input_image_tokens == input_image_tokens(512, 512) > 0
    assert with_reference.usage.input_image_tokens == 150 + 345
    assert result.usage.input_tokens == result.usage.input_text_tokens + 150


@pytest.mark.parametrize(
    ("size", "tokens"),
    [((512, 512), 150), ((1024, 1024), 345), ((100, 100), 150), ((2048, 4096), 475)],
)
def test_input_image_tokens(size: tuple[int, int], tokens: int) -> None:
    assert input_image_tokens(*size) == tokens


async def test_inputs_are_decoded_off_the_event_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    threads: list[threading.Thread] = []

    def spy(request: ImageRequest) -> object:
        threads.append(threading.current_thread())
        return prepare(request)

    monkeypatch.setattr(provider_module, "prepare", spy)
    await LocalProvider().generate(masked(), CTX)
    assert threads
    assert threads[0] is not threading.main_thread()


# --- decoding -----------------------------------------------------------------------------


def test_decoding_normalises_modes() -> None:
    grey16 = Image.new("I;16", (4, 4), 30000)
    palette = Image.new("P", (4, 4), 1)
    palette.putpalette([0, 0, 0, 200, 10, 10])
    palette.info["transparency"] = 0
    assert decode(as_input(grey16)).getpixel((0, 0)) == (116, 116, 116, 255)
    assert decode(as_input(palette)).getpixel((0, 0)) == (200, 10, 10, 255)
    assert decode(as_input(Image.new("L", (4, 4), 9)), (8, 2)).size == (8, 2)


def test_a_mask_without_alpha_is_read_by_its_grey_levels() -> None:
    grey = Image.new("L", (8, 8), 255)
    grey.putpixel((0, 0), 0)
    keep = decode_keep(as_input(grey), (8, 8))
    assert keep.getpixel((0, 0)) == 0
    assert keep.getpixel((4, 4)) == 255
    assert fit(keep, (8, 8)) is keep
