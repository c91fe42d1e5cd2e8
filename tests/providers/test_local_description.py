"""The sentence the sketch renderer says about its picture (Gemini-style text parts)."""

from __future__ import annotations

import pytest

from imagegate.core.requests import ImageRequest, Operation
from imagegate.providers.local.describe import describe


def request(prompt: str, operation: Operation = "generate") -> ImageRequest:
    return ImageRequest(operation, "sketch", prompt, 1, 256, 256, "auto", "png", "auto")


@pytest.mark.parametrize(
    ("prompt", "sentence"),
    [
        (
            "a red house under a yellow sun by the blue sea",
            "Here is a picture of a red house, the yellow sun and the blue sea.",
        ),
        (
            "three pink flowers and green trees at night",
            "Here is a picture of three pink flowers and green trees at night.",
        ),
        (
            "an orange square on a black background",
            "Here is a picture of an orange square on a black background.",
        ),
        (
            'a "Hello world" banner over mountains',
            'Here is a picture of mountains and the words "Hello world".',
        ),
        (
            "stormy sea with two boats",
            "Here is a picture of the sea and two boats under a stormy sky.",
        ),
        ("twelve stars", "Here is a picture of 12 stars."),
        ("purple and gold", "Here is an abstract picture in purple and gold."),
        ("", "Here is an abstract picture."),
    ],
)
def test_generate_sentences(prompt: str, sentence: str) -> None:
    assert describe(request(prompt)) == sentence


def test_edit_and_variation_sentences() -> None:
    assert describe(request("add a white moon", "edit")) == (
        "Here is your edited picture, now with the white moon."
    )
    assert describe(request("make it pink", "edit")) == "Here is your edited picture in pink."
    assert describe(request("", "variation")) == "Here is a variation of your picture."


def test_tinted_colours_take_the_nearest_name() -> None:
    assert describe(request("a light blue circle")).startswith("Here is a picture of a ")
    assert describe(request("a light blue circle")) != "Here is a picture of a circle."
