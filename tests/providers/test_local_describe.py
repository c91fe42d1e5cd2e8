"""``describe`` by the local ``sketch`` renderer: four numbered prompt suggestions, no image."""

from __future__ import annotations

import pytest
from PIL import Image

from imagegate.core.requests import ImageRequest, ImageResult
from imagegate.providers.local import LocalProvider
from imagegate.providers.local.draw import render
from imagegate.providers.local.suggest import NUMBER_EMOJIS, name_colour, suggest_prompts
from imagegate.providers.local.usage import input_image_tokens
from imagegate.providers.local.vocab import COLOURS
from tests.providers.inputs_kit import CTX, as_input, photo, red_disc, tool_request


def drawn(prompt: str, size: tuple[int, int] = (384, 256)) -> Image.Image:
    return render(prompt, *size, seed=0, variant=0, transparent=False).final


def describe(image: Image.Image, **changes: object) -> ImageRequest:
    return tool_request("describe", (as_input(image),), **changes)


async def described(image: Image.Image) -> str:
    result = await LocalProvider().generate(describe(image), CTX)
    assert result.text is not None
    return result.text


async def test_describe_answers_four_numbered_suggestions_and_no_image() -> None:
    request = describe(drawn("a red house under a yellow sun by the blue sea"))
    result = await LocalProvider().generate(request, CTX)
    assert result.images == []
    assert result.text is not None
    lines = result.text.split("\n")
    assert len(lines) == 4
    for number, line in zip(("1️⃣ ", "2️⃣ ", "3️⃣ ", "4️⃣ "), lines, strict=True):
        assert line.startswith(number)
        assert len(line) > len(number) + 20
    assert len(set(line[3:] for line in lines)) == 4
    assert NUMBER_EMOJIS[0] + " " == "1️⃣ "


@pytest.mark.parametrize(
    ("prompt", "words"),
    [
        ("a yellow sun over the blue sea", ("sun", "sea", "yellow", "sky")),
        ("a full moon over the sea at night", ("moon", "night")),
        ("green hills under a clear sky", ("meadow", "green", "sky")),
    ],
)
async def test_describe_finds_what_the_renderer_drew(prompt: str, words: tuple[str, ...]) -> None:
    text = await described(drawn(prompt))
    for word in words:
        assert all(word in line for line in text.split("\n")[:3]), (word, text)


async def test_describe_does_not_invent_subjects() -> None:
    text = await described(red_disc())
    for word in ("sun", "moon", "sea", "meadow", "trees", "night", "sky"):
        assert word not in text
    assert "abstract" in text
    assert "red" in text
    assert "white" in text


async def test_describe_names_colours_from_the_renderers_vocabulary() -> None:
    assert name_colour(COLOURS["red"]) == "red"
    assert name_colour((250, 250, 250)) == "white"
    assert name_colour((140, 180, 245)) == "light blue"
    text = await described(Image.new("RGB", (64, 64), COLOURS["orange"]))
    assert "orange" in text


async def test_describe_is_deterministic_and_depends_on_the_picture() -> None:
    one = await described(photo((200, 200), seed=1))
    again = await described(photo((200, 200), seed=1))
    night = await described(drawn("the moon and stars at night"))
    assert one == again
    assert one != night


async def test_describe_usage_counts_the_image_in_and_the_text_out() -> None:
    image = drawn("a sunset over the mountains", (512, 512))
    result = await LocalProvider().generate(describe(image, prompt="describe it", n=3), CTX)
    assert result.usage is not None
    assert result.usage.input_image_tokens == input_image_tokens(512, 512)
    assert result.usage.input_text_tokens == 2
    assert result.usage.output_image_tokens == 0
    assert result.usage.output_text_tokens > 40


async def test_streaming_describe_yields_only_the_result() -> None:
    request = describe(drawn("a yellow sun"), partial_images=2)
    events = [event async for event in LocalProvider().stream(request, CTX)]
    assert len(events) == 1
    (event,) = events
    assert isinstance(event, ImageResult)
    assert event.text == await described(drawn("a yellow sun"))


def test_suggest_prompts_reads_any_mode() -> None:
    grey = Image.new("L", (40, 30), 30)
    text = suggest_prompts(grey)
    assert text.count("\n") == 3
    assert "night" in text
