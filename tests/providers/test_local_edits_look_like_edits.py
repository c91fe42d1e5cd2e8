"""The local renderer's edits look like edits of the input, checked on pixels.

Thresholds (stated here, used below): an edit without a mask keeps the input's layout (16×16
grey thumbnails correlate above ``EDIT_SIMILARITY``) and changes under ``MAX_CHANGED`` of its
pixels; a variation keeps the layout above ``VARIATION_SIMILARITY`` and its subject (the red
house) overlaps the input's by more than ``SUBJECT_OVERLAP``.
"""

from __future__ import annotations

import math

from PIL import Image, ImageChops, ImageDraw

from imagegate.core.requests import ImageRequest
from imagegate.providers.local import LocalProvider
from imagegate.providers.local.masked import ramp_radius
from imagegate.providers.local.regions import find_horizon
from tests.providers.inputs_kit import (
    CTX,
    as_input,
    changed,
    count,
    decode_image,
    edit_request,
    mean_abs_diff,
)

SIZE = (512, 512)
HORIZON = 230
SKY_TOP, SKY_LOW = (40, 90, 200), (150, 190, 240)
GRASS = (70, 150, 60)
HOUSE = (300, 170, 400, 250)
SUN = (80, 40, 150, 110)
EDIT_SIMILARITY = 0.9
MAX_CHANGED = 0.2
VARIATION_SIMILARITY = 0.95
SUBJECT_OVERLAP = 0.6


def landscape() -> Image.Image:
    """Sky (a gradient) over grass at row ``HORIZON``, a yellow sun, a red house."""
    image = Image.new("RGB", SIZE, GRASS)
    pen = ImageDraw.Draw(image)
    for y in range(HORIZON):
        t = y / HORIZON
        pen.line(
            [(0, y), (SIZE[0], y)],
            fill=tuple(round(a + (b - a) * t) for a, b in zip(SKY_TOP, SKY_LOW, strict=True)),
        )
    pen.ellipse(SUN, fill=(250, 220, 60))
    pen.rectangle(HOUSE, fill=(200, 40, 40))
    return image


async def edited(request: ImageRequest) -> Image.Image:
    result = await LocalProvider().generate(request, CTX)
    return decode_image(result.images[0].data).convert("RGB")


def correlation(a: Image.Image, b: Image.Image) -> float:
    """Pearson correlation of 16×16 grey thumbnails: how alike the coarse layouts are."""
    ta, tb = (list(i.convert("L").resize((16, 16), Image.Resampling.BOX).tobytes()) for i in (a, b))
    ma, mb = sum(ta) / len(ta), sum(tb) / len(tb)
    cov = sum((x - ma) * (y - mb) for x, y in zip(ta, tb, strict=True))
    return cov / math.sqrt(sum((x - ma) ** 2 for x in ta) * sum((y - mb) ** 2 for y in tb))


def red_area(image: Image.Image) -> set[tuple[int, int]]:
    data = image.convert("RGB").tobytes()
    width = image.width
    return {
        (i // 3 % width, i // 3 // width)
        for i in range(0, len(data), 3)
        if data[i] > 150 and data[i + 1] < 90 and data[i + 2] < 90
    }


def test_the_horizon_is_found_in_a_landscape() -> None:
    found = find_horizon(landscape())
    assert found is not None and abs(found - HORIZON) <= 8
    assert find_horizon(Image.new("RGB", SIZE, (90, 90, 90))) is None


async def test_an_unmasked_edit_keeps_the_composition_and_adds_what_is_named() -> None:
    source = landscape()
    out = await edited(edit_request((as_input(source),), prompt="a white boat"))
    assert correlation(out, source) > EDIT_SIMILARITY
    assert count(changed(out, source)) < MAX_CHANGED * SIZE[0] * SIZE[1]
    assert count(changed(out, source)) > 0.003 * SIZE[0] * SIZE[1]  # something was drawn
    # no global tint: the sky's corner and the house keep their exact colours
    assert out.getpixel((5, 5)) == source.getpixel((5, 5))
    assert out.getpixel((350, 210)) == source.getpixel((350, 210))


async def test_a_named_sky_is_recoloured_and_nothing_else() -> None:
    source = landscape()
    out = await edited(edit_request((as_input(source),), prompt="a purple sky"))
    ground = Image.new("L", SIZE, 0)
    ImageDraw.Draw(ground).rectangle((0, HORIZON + 12, SIZE[0], SIZE[1]), fill=255)
    assert count(changed(out, source), within=ground) == 0
    r, g, b = out.crop((0, 0, SIZE[0], 30)).resize((1, 1), Image.Resampling.BOX).getpixel((0, 0))  # type: ignore[misc]
    assert r > g + 30 and b > g + 30  # purple
    sun = out.getpixel((115, 75))
    assert isinstance(sun, tuple) and sun[0] > 200 and sun[2] < 120  # still a yellow sun
    top, low = out.getpixel((5, 5)), out.getpixel((5, HORIZON - 5))
    assert isinstance(top, tuple) and isinstance(low, tuple)
    assert sum(low) - sum(top) > 30  # the sky keeps its gradient (lighter toward the horizon)


async def test_a_masked_sea_continues_the_pictures_horizon() -> None:
    """The sea drawn in the right half starts at the picture's own horizon (no second one),
    the sky above it continues, and the kept half is untouched."""
    source = landscape()
    mask = Image.new("RGBA", SIZE, (0, 0, 0, 255))
    ImageDraw.Draw(mask).rectangle((256, 0, SIZE[0], SIZE[1]), fill=(0, 0, 0, 0))
    request = edit_request((as_input(source),), prompt="a blue sea", mask=as_input(mask))
    out = await edited(request)
    kept = Image.new("L", SIZE, 0)
    ImageDraw.Draw(kept).rectangle((0, 0, 255, SIZE[1]), fill=255)
    assert count(changed(out, source), within=kept) == 0
    difference = ImageChops.difference(out, source)
    for x in (280, 440, 500):  # beside the house, which the mask removes
        change = [sum(difference.getpixel((x, y))) for y in range(SIZE[1])]  # type: ignore[arg-type]
        first = next(y for y, c in enumerate(change) if c > 90)
        assert abs(first - HORIZON) <= 12, (x, first)  # the sea begins at the picture's horizon
        below = [out.getpixel((x, y)) for y in range(HORIZON + 12, SIZE[1])]
        assert all(isinstance(p, tuple) and p[2] > p[1] + 20 for p in below)  # all sea
        above = (x, 10, x + 1, HORIZON - 6)
        assert mean_abs_diff(out.crop(above), source.crop(above)) < 20  # the sky continues


async def test_a_masked_edit_fades_in_over_a_soft_edge() -> None:
    source = landscape()
    mask = Image.new("RGBA", SIZE, (0, 0, 0, 255))
    ImageDraw.Draw(mask).rectangle((256, 0, SIZE[0], SIZE[1]), fill=(0, 0, 0, 0))
    out = await edited(edit_request((as_input(source),), prompt="a blue sea", mask=as_input(mask)))
    radius = ramp_radius(SIZE)
    assert radius >= min(SIZE) // 60
    row = 400  # in the grass on the left, in the sea on the right
    difference = ImageChops.difference(out, source)
    change = [sum(difference.getpixel((x, row))) for x in range(255, 256 + radius + 1)]  # type: ignore[arg-type]
    assert change[0] == 0  # the last kept column
    assert len({c for c in change if 0 < c < change[-1]}) >= 3  # a ramp, not a step


async def test_a_variation_keeps_the_subject_and_layout_and_varies_details() -> None:
    source = landscape()
    request = edit_request((as_input(source),), operation="variation", prompt="", n=2)
    result = await LocalProvider().generate(request, CTX)
    one, two = (decode_image(image.data).convert("RGB") for image in result.images)
    house = red_area(source)
    for image in (one, two):
        assert correlation(image, source) > VARIATION_SIMILARITY
        varied = red_area(image)
        assert len(house & varied) / len(house | varied) > SUBJECT_OVERLAP
        assert mean_abs_diff(image, source) > 1.5  # details changed
    assert mean_abs_diff(one, two) > 1
