"""Midjourney domain pieces: prompt flags, customIds, shorten, and the grid/tile/mask pixels."""

from __future__ import annotations

import io
from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image, ImageDraw

from imagegate.core.catalog import GenerateSpec
from imagegate.core.midjourney import ParameterError
from imagegate.core.midjourney.buttons import buttons_for, offered, parse_custom_id
from imagegate.core.midjourney.flags import PromptFlags, parse_prompt
from imagegate.core.midjourney.pixels import (
    compose_grid,
    crop_quadrant,
    make_tileable,
    mask_to_alpha,
)
from imagegate.core.midjourney.plans import grid_requests, picture_size, quality_for
from imagegate.core.midjourney.shorten import numbered, shorten, suggestion
from imagegate.core.requests import ImageRequest

TASK = "0f8fad5b-d9cb-469f-a165-70867728950e"
HASH = TASK.replace("-", "")


def test_flags_are_parsed_and_normalised() -> None:
    parsed = parse_prompt(
        "https://example.com/a.png a red house, trees and a sea —ar 16:9 --seed 7 "
        "--no trees, sea --s 250 --c 30 --q .5 --tile --niji 6 --turbo"
    )
    assert parsed.image_urls == ("https://example.com/a.png",)
    assert parsed.text == "a red house, and a"
    assert parsed.flags == PromptFlags(
        aspect=(16, 9),
        seed=7,
        no=("trees", "sea"),
        niji="6",
        stylize=250,
        chaos=30,
        quality=0.5,
        tile=True,
        speed="turbo",
    )
    assert parsed.final_prompt(9).endswith("--niji 6 --turbo --seed 9")
    assert "--seed 7" not in parsed.final_prompt(9)


@pytest.mark.parametrize(
    ("prompt", "flag"),
    [
        ("cat --foo", "--foo"),
        ("cat --ar", "--ar"),
        ("cat --ar 3", "--ar"),
        ("cat --ar 1:1 dog", "--ar"),
        ("cat --ar 2:3 --aspect 2:3", "--aspect"),
        ("cat --seed 4294967296", "--seed"),
        ("cat --stylize 1001", "--stylize"),
        ("cat --no", "--no"),
        ("cat --v 9", "--v"),
        ("cat --niji 2", "--niji"),
        ("cat --fast --relax", "--relax"),
        ("cat --zoom 1.5", "--zoom"),
        ("cat --", "--"),
    ],
)
def test_bad_flags_name_themselves(prompt: str, flag: str) -> None:
    with pytest.raises(ParameterError) as raised:
        parse_prompt(prompt)
    assert raised.value.param == flag and flag in raised.value.message


def test_zoom_only_in_a_custom_zoom() -> None:
    assert parse_prompt("a cat --zoom 1.5", allow_zoom=True).flags.zoom == 1.5
    with pytest.raises(ParameterError):
        parse_prompt("a cat --zoom 2.5", allow_zoom=True)


@given(st.text(max_size=200))
def test_any_prompt_parses_or_is_a_parameter_error(prompt: str) -> None:
    try:
        parsed = parse_prompt(prompt)
    except ParameterError as error:
        refused: ParameterError | None = error
    else:
        refused = None
        assert not any(word.startswith("--") for word in parsed.text.split())
    assert refused is None or refused.param


def test_custom_ids_round_trip_and_stay_with_their_task() -> None:
    for action in ("IMAGINE", "UPSCALE", "DESCRIBE", "SHORTEN"):
        for button in buttons_for(action, TASK):
            press = parse_custom_id(button.custom_id, TASK)
            assert press.task_hash == HASH and offered(button.custom_id, action, TASK)
    assert parse_custom_id(f"MJ::JOB::upsample::3::{HASH}", TASK).index == 3
    assert parse_custom_id(f"MJ::JOB::pan_up::1::{HASH}::SOLO", TASK).kind == "pan_up"
    assert parse_custom_id(f"MJ::Outpaint::75::1::{HASH}::SOLO", TASK).index == 75
    assert not offered(f"MJ::JOB::pan_up::1::{HASH}::SOLO", "IMAGINE", TASK)
    with pytest.raises(ParameterError, match="another task"):
        parse_custom_id(f"MJ::JOB::upsample::1::{'a' * 32}", TASK)
    with pytest.raises(ParameterError, match="unknown customId"):
        parse_custom_id("MJ::JOB::upsample::9::" + HASH, TASK)
    assert buttons_for("SHORTEN", TASK)[0].wire()["type"] == 2


def test_shorten_and_numbered_lists() -> None:
    options = shorten("an extremely beautiful red house under a yellow sun, 8k")
    assert options[0] == "an red house under a yellow sun"
    assert options[1] == "red house yellow sun"
    assert [len(o.split()) for o in options] == [7, 4, 3, 2]
    text = numbered(options)
    assert text.splitlines()[2].startswith("3️⃣ ")
    assert suggestion(text, 2) == options[1] and suggestion("1️⃣ only", 4) is None


def test_sizes_follow_aspect_and_quality() -> None:
    spec = GenerateSpec(
        sizes=["256x256", "512x512", "1024x1024", "1536x1024", "1024x1536"],
        default_size="1024x1024",
        max_n=4,
        qualities=["low", "medium", "high", "auto"],
        default_quality="auto",
        prompt_max_chars=100,
    )
    assert picture_size(spec, PromptFlags(quality=0.25)) == "256x256"
    assert picture_size(spec, PromptFlags()) == "1024x1024"
    assert picture_size(spec, PromptFlags(aspect=(2, 3))) == "1024x1536"
    assert quality_for(spec, PromptFlags(quality=0.25)) == "low"
    assert quality_for(spec, PromptFlags()) is None
    assert quality_for(spec, PromptFlags(quality=2)) == "high"


def test_grid_requests() -> None:
    request = ImageRequest(
        operation="generate",
        model="m",
        prompt="a red house by the sea",
        n=4,
        width=256,
        height=256,
        quality="auto",
        output_format="png",
        background="auto",
    )
    assert grid_requests(request, 5) == (replace(request, extras={"seed": 5}),)
    wild = grid_requests(request, 5, chaos=100)
    assert [r.extras["seed"] for r in wild] == [5, 6, 7, 8] and all(r.n == 1 for r in wild)
    assert wild[0].prompt == request.prompt and len({r.prompt for r in wild}) > 1
    single = grid_requests(replace(request, n=1), None)
    assert len(single) == 4 and all("seed" not in r.extras for r in single)


def test_grid_crop_tile_and_mask() -> None:
    colours = ["red", "green", "blue", "yellow"]
    grid = compose_grid([Image.new("RGB", (10, 6), colour) for colour in colours])
    assert grid.size == (20, 12)
    for index, colour in enumerate(colours, start=1):
        assert crop_quadrant(grid, index).getcolors() == [
            (60, Image.new("RGB", (1, 1), colour).getpixel((0, 0)))
        ]

    picture = Image.linear_gradient("L").resize((64, 64)).convert("RGB")
    tiled = make_tileable(picture)
    top, bottom = tiled.crop((0, 0, 64, 1)).tobytes(), tiled.crop((0, 63, 64, 64)).tobytes()
    assert max(abs(a - b) for a, b in zip(top, bottom, strict=True)) <= 8
    assert picture.getpixel((0, 0)) != picture.getpixel((0, 63))

    mask = Image.new("RGBA", (8, 8), (0, 0, 0, 0))  # transparent counts as black: keep
    ImageDraw.Draw(mask).rectangle((0, 0, 3, 7), fill=(255, 255, 255, 255))
    converted = Image.open(io.BytesIO(mask_to_alpha(mask, (16, 16))))
    alpha = converted.getchannel("A")
    assert converted.size == (16, 16) and converted.format == "PNG"
    assert alpha.getpixel((2, 2)) == 0 and alpha.getpixel((12, 2)) == 255
