"""The editing tools of the local ``sketch`` renderer, checked on pixels.

Upscale, outpaint, erase, background removal and replacement, enhance, blend and variation
strength; then what every tool shares: dispatch, determinism, streaming and usage.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
from PIL import Image, ImageDraw, ImageOps, ImageStat

from imagegate.core.requests import OPERATION_FEATURES, ImageRequest, ImageResult, PartialImage
from imagegate.errors import InvalidRequest
from imagegate.providers.local import LocalProvider
from imagegate.providers.local.operations import PAINTERS
from imagegate.providers.local.usage import estimate_usage, input_image_tokens
from tests.providers.inputs_kit import (
    CTX,
    as_input,
    changed,
    contrast,
    count,
    decode_image,
    edge_energy,
    ellipse_mask,
    mean_abs_diff,
    photo,
    pixels,
    red_disc,
    reddish,
    tool_request,
    where,
)
from tests.providers.test_local_variation import layout_correlation, similar

SIZE = (256, 256)


async def images_of(request: ImageRequest) -> list[Image.Image]:
    result = await LocalProvider().generate(request, CTX)
    return [decode_image(image.data) for image in result.images]


async def one(request: ImageRequest) -> Image.Image:
    (image,) = await images_of(request)
    return image


def mean_colour(image: Image.Image, mask: Image.Image | None = None) -> list[float]:
    return ImageStat.Stat(image.convert("RGB"), mask).mean


def colour_gap(a: list[float], b: list[float]) -> float:
    return max(abs(x - y) for x, y in zip(a, b, strict=True))


# --- upscale ------------------------------------------------------------------------------


def upscale(source: Image.Image, factor: int = 2, **changes: object) -> ImageRequest:
    width, height = source.size
    return tool_request(
        "upscale",
        (as_input(source),),
        width=width * factor,
        height=height * factor,
        scale=float(factor),
        **changes,
    )


@pytest.mark.parametrize("factor", [2, 4])
async def test_upscale_enlarges_and_scales_back_down_to_the_input(factor: int) -> None:
    source = photo((160, 120))
    image = await one(upscale(source, factor))
    assert image.size == (160 * factor, 120 * factor)
    back = image.resize(source.size, Image.Resampling.BOX)
    assert mean_abs_diff(back, source) < 4


async def test_subtle_upscale_is_sharper_than_plain_resampling() -> None:
    source = photo((160, 120))
    image = await one(upscale(source))
    plain = source.resize(image.size, Image.Resampling.BICUBIC)
    assert edge_energy(image) > edge_energy(plain)


async def test_creative_upscale_adds_detail_that_averages_out() -> None:
    source = photo((160, 120))
    subtle = await one(upscale(source, strength=0))
    creative = await one(upscale(source, strength=0.8))
    mild = await one(upscale(source, strength=0.2))
    assert mean_abs_diff(creative, subtle) > 3
    assert edge_energy(creative) > edge_energy(mild) > edge_energy(subtle)
    back = creative.resize(source.size, Image.Resampling.BOX)
    assert mean_abs_diff(back, source) < 8


async def test_creative_upscales_differ_per_image_and_repeat_per_seed() -> None:
    source = photo((96, 96))
    first = await images_of(upscale(source, n=2, strength=0.5, extras={"seed": 3}))
    again = await images_of(upscale(source, n=2, strength=0.5, extras={"seed": 3}))
    assert [i.tobytes() for i in first] == [i.tobytes() for i in again]
    assert first[0].tobytes() != first[1].tobytes()


async def test_upscale_keeps_the_inputs_transparency() -> None:
    source = red_disc((96, 96)).convert("RGBA")
    alpha = Image.new("L", source.size, 0)
    ImageDraw.Draw(alpha).ellipse((24, 24, 72, 72), fill=255)
    source.putalpha(alpha)
    image = await one(upscale(source, background="transparent"))
    assert image.mode == "RGBA"
    assert image.getpixel((0, 0))[3] == 0  # type: ignore[index]
    assert image.getpixel((96, 96))[3] == 255  # type: ignore[index]


# --- outpaint -----------------------------------------------------------------------------


def outpaint(
    source: Image.Image, padding: tuple[int, int, int, int], **changes: object
) -> ImageRequest:
    left, top, right, bottom = padding
    fields: dict[str, object] = {
        "width": source.width + left + right,
        "height": source.height + top + bottom,
        "padding": padding,
    }
    fields.update(changes)
    return tool_request("outpaint", (as_input(source),), **fields)


async def test_zoom_out_keeps_the_input_in_the_middle_and_fills_the_border() -> None:
    source = photo(SIZE)
    image = (await one(outpaint(source, (128, 128, 128, 128)))).convert("RGB")
    assert image.size == (512, 512)
    assert image.crop((128, 128, 384, 384)).tobytes() == source.tobytes()
    border = Image.new("L", image.size, 255)
    ImageDraw.Draw(border).rectangle((128, 128, 383, 383), fill=0)
    assert ImageStat.Stat(image.convert("L"), border).stddev[0] > 5
    left_strip = image.crop((64, 128, 128, 384))
    assert colour_gap(mean_colour(left_strip), mean_colour(source.crop((0, 0, 16, 256)))) < 30


async def test_outpaint_to_a_declared_size_scales_the_canvas() -> None:
    source = photo(SIZE)
    image = (await one(outpaint(source, (128, 128, 128, 128), width=256, height=256))).convert(
        "RGB"
    )
    assert image.size == SIZE
    inner = image.crop((64, 64, 192, 192))
    assert mean_abs_diff(inner, source.resize((128, 128), Image.Resampling.LANCZOS)) < 3


async def test_pan_left_extends_only_the_left_side() -> None:
    source = photo(SIZE)
    image = (await one(outpaint(source, (128, 0, 0, 0)))).convert("RGB")
    assert image.size == (384, 256)
    assert image.crop((128, 0, 384, 256)).tobytes() == source.tobytes()
    edge = mean_colour(source.crop((0, 0, 8, 256)))
    assert colour_gap(mean_colour(image.crop((112, 0, 128, 256))), edge) < 20
    assert contrast(image.crop((0, 0, 128, 256))) > 3


async def test_outpaint_draws_the_prompts_subjects_in_the_new_area_only() -> None:
    source = photo(SIZE)
    image = (await one(outpaint(source, (128, 128, 128, 128), prompt="a red circle"))).convert(
        "RGB"
    )
    inside = Image.new("L", image.size, 0)
    ImageDraw.Draw(inside).rectangle((128, 128, 383, 383), fill=255)
    red = Image.new("L", image.size)
    red.putdata([255 if reddish(p) else 0 for p in pixels(image)])
    assert count(red) > 500
    assert count(red, within=inside) == 0


async def test_outpaint_variants_differ_when_the_prompt_draws_something() -> None:
    request = outpaint(photo(SIZE), (0, 128, 0, 0), prompt="the sun and clouds", n=2)
    first, second = await images_of(request)
    assert first.tobytes() != second.tobytes()
    assert [i.tobytes() for i in await images_of(request)] == [first.tobytes(), second.tobytes()]


@pytest.mark.parametrize("padding", [None, (-1, 0, 0, 0)])
async def test_outpaint_needs_a_valid_padding(padding: tuple[int, int, int, int] | None) -> None:
    request = replace(outpaint(photo(SIZE), (10, 10, 10, 10)), padding=padding)
    with pytest.raises(InvalidRequest) as caught:
        await LocalProvider().generate(request, CTX)
    assert caught.value.param == "padding"


# --- erase --------------------------------------------------------------------------------

HOLE = (80, 80, 176, 176)


def erase(source: Image.Image, **changes: object) -> ImageRequest:
    mask = as_input(ellipse_mask(source.size, HOLE))
    return tool_request("erase", (as_input(source),), mask=mask, **changes)


async def test_erase_changes_only_the_masked_area() -> None:
    source = photo(SIZE)
    image = (await one(erase(source, prompt="a red circle"))).convert("RGB")
    keep = ellipse_mask(SIZE, HOLE).getchannel("A")
    diff = changed(image, source)
    assert count(diff, within=where(keep, lambda a: a == 255)) == 0
    assert count(diff) > 0.5 * count(where(keep, lambda a: a < 255))
    assert not any(reddish(p) for p in pixels(image))  # erasing draws no prompt subjects


async def test_erase_fills_from_the_surrounding_colours() -> None:
    source = Image.new("RGB", SIZE, (60, 140, 90))
    ImageDraw.Draw(source).rectangle((100, 100, 156, 156), fill=(220, 30, 30))
    image = (await one(erase(source))).convert("RGB")
    hole = where(ellipse_mask(SIZE, HOLE).getchannel("A"), lambda a: a < 255)
    assert colour_gap(mean_colour(image, hole), [60, 140, 90]) < 12
    assert not any(reddish(p) for p in pixels(image))


async def test_erase_needs_a_mask() -> None:
    with pytest.raises(InvalidRequest) as caught:
        await LocalProvider().generate(tool_request("erase", (as_input(photo(SIZE)),)), CTX)
    assert caught.value.param == "mask"


# --- background removal and replacement ---------------------------------------------------


@pytest.mark.parametrize("fmt", ["png", "webp"])
async def test_remove_background_clears_the_background_and_keeps_the_subject(fmt: str) -> None:
    result = await LocalProvider().generate(
        tool_request("remove_background", (as_input(red_disc()),), output_format=fmt), CTX
    )
    image = decode_image(result.images[0].data).convert("RGBA")
    assert result.background == "transparent"
    for corner in ((0, 0), (255, 0), (0, 255), (255, 255), (20, 128)):
        assert image.getpixel(corner)[3] == 0  # type: ignore[index]
    centre = image.getpixel((128, 128))
    assert centre[3] == 255  # type: ignore[index]
    assert reddish(centre)  # type: ignore[arg-type]


async def test_remove_background_as_jpeg_is_flattened_onto_white() -> None:
    result = await LocalProvider().generate(
        tool_request("remove_background", (as_input(red_disc()),), output_format="jpeg"), CTX
    )
    image = decode_image(result.images[0].data)
    assert result.background == "opaque"
    assert image.mode == "RGB"
    assert min(image.getpixel((2, 2))) > 240  # type: ignore[arg-type]
    assert reddish(image.getpixel((128, 128)))  # type: ignore[arg-type]


async def test_remove_background_keeps_background_coloured_parts_inside_the_subject() -> None:
    source = red_disc()
    ImageDraw.Draw(source).ellipse((116, 116, 140, 140), fill=(255, 255, 255))
    image = (await one(tool_request("remove_background", (as_input(source),)))).convert("RGBA")
    assert image.getpixel((128, 128))[3] == 255  # type: ignore[index]
    assert image.getpixel((4, 4))[3] == 0  # type: ignore[index]


async def test_remove_background_on_a_graded_backdrop() -> None:
    backdrop = Image.linear_gradient("L").resize(SIZE).point(lambda v: 150 + v // 3)
    source = Image.merge("RGB", (backdrop, backdrop, backdrop.point(lambda v: min(255, v + 30))))
    ImageDraw.Draw(source).rectangle((96, 96, 160, 160), fill=(30, 120, 40))
    image = (await one(tool_request("remove_background", (as_input(source),)))).convert("RGBA")
    alpha = image.getchannel("A")
    assert alpha.getpixel((128, 128)) == 255
    assert alpha.getpixel((128, 10)) == 0
    assert alpha.getpixel((128, 245)) == 0


async def test_replace_background_draws_the_prompt_behind_the_subject() -> None:
    source = red_disc()
    request = tool_request("replace_background", (as_input(source),), prompt="a blue background")
    image = (await one(request)).convert("RGB")
    assert image.mode == "RGB"
    for corner in ((1, 1), (254, 1), (1, 254), (254, 254)):
        red, green, blue = image.getpixel(corner)  # type: ignore[misc]
        assert blue > red + 30
        assert blue > green
    subject = Image.new("L", SIZE, 0)
    ImageDraw.Draw(subject).ellipse((72, 72, 184, 184), fill=255)
    assert count(changed(image, source), within=subject) == 0


async def test_replace_background_follows_the_prompt() -> None:
    source = as_input(red_disc())
    green = await one(tool_request("replace_background", (source,), prompt="a green background"))
    sea = await one(tool_request("replace_background", (source,), prompt="the sea at night"))
    assert mean_abs_diff(green, sea) > 20


# --- enhance ------------------------------------------------------------------------------


async def test_enhance_adds_contrast_and_sharpness_at_the_same_size() -> None:
    flat = Image.blend(photo((200, 150)), Image.new("RGB", (200, 150), (128, 128, 128)), 0.5)
    image = await one(tool_request("enhance", (as_input(flat),), width=200, height=150))
    assert image.size == (200, 150)
    assert contrast(image) > contrast(flat) * 1.3
    assert edge_energy(image) > edge_energy(flat) * 1.3
    assert layout_correlation(image, flat) > 0.9


async def test_enhance_still_lifts_an_already_full_range_picture() -> None:
    source = photo(SIZE)
    image = await one(tool_request("enhance", (as_input(source),)))
    assert contrast(image) > contrast(source)
    assert edge_energy(image) > edge_energy(source)


# --- blend --------------------------------------------------------------------------------


def blend_inputs() -> list[Image.Image]:
    return [
        photo((300, 200), seed=1),
        red_disc((200, 300)),
        Image.new("RGB", (256, 256), (250, 214, 30)),
    ]


def blend(images: list[Image.Image], **changes: object) -> ImageRequest:
    fields: dict[str, object] = {"width": 320, "height": 256}
    fields.update(changes)
    return tool_request("blend", tuple(as_input(i) for i in images), **fields)


async def test_blend_combines_every_input_into_the_output_size() -> None:
    images = blend_inputs()
    base = await one(blend(images))
    assert base.size == (320, 256)
    for index in range(len(images)):
        swapped = list(images)
        swapped[index] = ImageOps.invert(images[index].convert("RGB"))
        other = await one(blend(swapped))
        assert mean_abs_diff(base, other) > 8, index


@pytest.mark.parametrize("count_", [2, 5])
async def test_blend_takes_two_to_five_images(count_: int) -> None:
    images = [photo((128, 128), seed=i) for i in range(count_)]
    image = await one(blend(images, width=128, height=128))
    assert image.size == (128, 128)


async def test_blend_variants_differ_and_repeat() -> None:
    request = blend(blend_inputs(), n=2)
    first, second = await images_of(request)
    assert first.tobytes() != second.tobytes()
    assert [i.tobytes() for i in await images_of(request)] == [first.tobytes(), second.tobytes()]


async def test_blend_needs_two_images() -> None:
    with pytest.raises(InvalidRequest) as caught:
        await LocalProvider().generate(blend(blend_inputs()[:1]), CTX)
    assert caught.value.param == "image"


# --- variation strength -------------------------------------------------------------------


async def test_a_subtle_variation_stays_closer_than_a_strong_one() -> None:
    source = photo((320, 320))

    def request(strength: float | None) -> ImageRequest:
        return tool_request("variation", (as_input(source),), strength=strength)

    subtle = await one(request(0.2))
    strong = await one(request(0.8))
    assert mean_abs_diff(subtle, source) < mean_abs_diff(strong, source)
    assert layout_correlation(subtle, source) > layout_correlation(strong, source)
    assert similar(subtle, source)
    assert mean_abs_diff(subtle, source) > 1
    assert (await one(request(None))).tobytes() == (await one(request(None))).tobytes()


# --- shared -------------------------------------------------------------------------------


def every_tool() -> dict[str, ImageRequest]:
    source = photo((128, 96))
    picture = as_input(source)
    return {
        "upscale": upscale(source, strength=0.3),
        "outpaint": outpaint(source, (32, 0, 32, 16), prompt="the sun"),
        "erase": tool_request(
            "erase", (picture,), mask=as_input(ellipse_mask((128, 96), (30, 20, 90, 70)))
        ),
        "remove_background": tool_request("remove_background", (as_input(red_disc((128, 96))),)),
        "replace_background": tool_request(
            "replace_background", (as_input(red_disc((128, 96))),), prompt="a sunset"
        ),
        "enhance": tool_request("enhance", (picture,)),
        "blend": blend([source, red_disc()], width=128, height=128),
        "variation": tool_request("variation", (picture,), strength=0.5),
    }


def test_every_operation_has_a_painter() -> None:
    assert set(OPERATION_FEATURES) == {*PAINTERS, "describe"}


@pytest.mark.parametrize("operation", list(every_tool()))
async def test_every_tool_is_deterministic_and_sized_as_asked(operation: str) -> None:
    request = every_tool()[operation]
    first = await LocalProvider().generate(request, CTX)
    again = await LocalProvider().generate(request, CTX)
    assert [i.data for i in first.images] == [i.data for i in again.images]
    (image,) = first.images
    assert (image.width, image.height) == (request.width, request.height)
    assert decode_image(image.data).size == (request.width, request.height)
    assert first.usage == estimate_usage(
        request.prompt, request.width, request.height, request.quality, 1, request.images
    )
    assert first.usage.input_image_tokens == sum(
        input_image_tokens(i.width, i.height) for i in request.images
    )
    assert first.text


@pytest.mark.parametrize("operation", list(every_tool()))
async def test_every_tool_streams_partials_then_one_result(operation: str) -> None:
    request = every_tool()[operation]
    streamed = replace(request, n=2, partial_images=2)
    events = [event async for event in LocalProvider().stream(streamed, CTX)]
    *previews, final = events
    assert isinstance(final, ImageResult)
    assert [(p.image_index, p.partial_index) for p in previews if isinstance(p, PartialImage)] == [
        (0, 0),
        (0, 1),
        (1, 0),
        (1, 1),
    ]
    generated = await LocalProvider().generate(streamed, CTX)
    assert [i.data for i in final.images] == [i.data for i in generated.images]
    for preview in previews:
        assert isinstance(preview, PartialImage)
        assert decode_image(preview.image.data).size == (request.width, request.height)


async def test_tools_without_an_image_are_refused() -> None:
    request = replace(tool_request("enhance", (as_input(photo(SIZE)),)), images=())
    with pytest.raises(InvalidRequest) as caught:
        await LocalProvider().generate(request, CTX)
    assert caught.value.param == "image"
