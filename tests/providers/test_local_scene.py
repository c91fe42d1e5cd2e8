"""Prompt parsing and layout for the local ``sketch`` renderer."""

from __future__ import annotations

import random

import pytest

from imagegate.providers.local.layout import Element, Layout, compose
from imagegate.providers.local.scene import Scene, Subject, parse_prompt
from imagegate.providers.local.vocab import COLOURS, SUBJECT_WORDS

RED = COLOURS["red"]
BLUE = COLOURS["blue"]
YELLOW = COLOURS["yellow"]


def kinds(scene: Scene) -> list[str]:
    return [subject.kind for subject in scene.subjects]


def layout(prompt: str, width: int = 1024, height: int = 1024, seed: int = 1) -> Layout:
    return compose(parse_prompt(prompt), width, height, random.Random(seed))


def first(result: Layout, kind: str) -> Element:
    return next(element for element in result.elements if element.kind == kind)


# --- vocabulary ---------------------------------------------------------------------------


def test_at_least_36_named_colours_including_the_common_ones() -> None:
    required = {
        "red",
        "orange",
        "yellow",
        "green",
        "blue",
        "purple",
        "violet",
        "pink",
        "magenta",
        "cyan",
        "teal",
        "turquoise",
        "navy",
        "indigo",
        "brown",
        "beige",
        "gold",
        "silver",
        "grey",
        "gray",
        "black",
        "white",
        "crimson",
        "scarlet",
        "maroon",
        "olive",
        "lime",
        "mint",
        "lavender",
        "coral",
        "salmon",
        "peach",
        "amber",
        "emerald",
        "azure",
        "ivory",
        "sky blue",
    }
    assert len(COLOURS) >= 36
    assert required <= set(COLOURS)


@pytest.mark.parametrize(
    ("word", "kind"),
    [
        ("sun", "sun"),
        ("moon", "moon"),
        ("stars", "stars"),
        ("sky", "sky"),
        ("clouds", "clouds"),
        ("mountains", "mountains"),
        ("sea", "sea"),
        ("water", "sea"),
        ("ocean", "sea"),
        ("lake", "sea"),
        ("trees", "trees"),
        ("forest", "trees"),
        ("flowers", "flowers"),
        ("house", "house"),
        ("circle", "circle"),
        ("square", "square"),
        ("triangle", "triangle"),
        ("heart", "heart"),
    ],
)
def test_required_subject_words(word: str, kind: str) -> None:
    assert SUBJECT_WORDS[word].kind == kind
    assert kinds(parse_prompt(f"a picture of {word}")) == [kind]


# --- colours ------------------------------------------------------------------------------


def test_colour_binds_to_the_following_subject() -> None:
    scene = parse_prompt("a red house under a yellow sun by the blue sea")
    assert scene.subjects == (
        Subject("house", RED, 1),
        Subject("sun", YELLOW, 1),
        Subject("sea", BLUE, 1),
    )
    assert scene.palette == ()


def test_colour_without_a_following_subject_tints_the_palette() -> None:
    scene = parse_prompt("everything is red, under a house")
    assert scene.subjects == (Subject("house", None, 1),)
    assert scene.palette == (RED,)


def test_colour_reach_is_limited_to_a_few_words() -> None:
    assert parse_prompt("a red and very old house").subjects[0].colour is None
    assert parse_prompt("a red wooden house").subjects[0].colour == RED


def test_two_word_colours_win_over_single_words() -> None:
    scene = parse_prompt("a sky blue circle")
    assert scene.subjects == (Subject("circle", COLOURS["sky blue"], 1),)


def test_modifiers_lighten_and_darken() -> None:
    light = parse_prompt("a light blue square").subjects[0].colour
    dark = parse_prompt("a dark blue square").subjects[0].colour
    assert light is not None
    assert dark is not None
    assert sum(dark) < sum(BLUE) < sum(light)


def test_mood_words() -> None:
    assert parse_prompt("mountains at night").mood == "night"
    assert parse_prompt("a beach at sunset").mood == "sunset"
    assert parse_prompt("a house").mood is None


# --- counts -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("prompt", "count"),
    [
        ("a tree", 1),
        ("trees", None),
        ("a few trees", None),
        ("three trees", 3),
        ("12 trees", 12),
        ("two pine trees", 2),
        ("a forest", 10),
    ],
)
def test_counts_and_plurals(prompt: str, count: int | None) -> None:
    scene = parse_prompt(prompt)
    assert scene.subjects == (Subject("trees", None, count),)


def test_one_thing_mentioned_twice_is_one_subject() -> None:
    scene = parse_prompt("the sun, and a yellow sun")
    assert scene.subjects == (Subject("sun", YELLOW, 1),)


def test_repeated_objects_stay_separate() -> None:
    scene = parse_prompt("a red circle and a blue circle")
    assert scene.subjects == (Subject("circle", RED, 1), Subject("circle", BLUE, 1))


# --- quoted text --------------------------------------------------------------------------


def test_quoted_texts_in_every_quote_style() -> None:
    scene = parse_prompt(
        "a sign saying \"OPEN  now\", then 'Closed' and “Bye” but don't quote it's"
    )
    assert scene.texts == ("OPEN now", "Closed", "Bye")


def test_quoted_words_are_not_parsed_as_subjects_or_colours() -> None:
    scene = parse_prompt('a banner reading "red house"')
    assert scene.subjects == ()
    assert scene.palette == ()
    assert scene.texts == ("red house",)


@pytest.mark.parametrize(
    "prompt", ["", "   ", "🙂🙂", "qwerty zxcv", "x" * 5000, "'", '"""', "1e9 99999"]
)
def test_parsing_never_fails(prompt: str) -> None:
    assert isinstance(parse_prompt(prompt), Scene)


# --- layout -------------------------------------------------------------------------------


def test_sky_things_above_the_horizon_and_sea_below() -> None:
    result = layout("a sun, a moon, clouds and stars over mountains and the sea")
    sea = first(result, "sea")
    horizon = sea.box[1]
    assert 0.4 * 1024 < horizon < 0.75 * 1024
    assert sea.box[3] == 1024
    for kind in ("sun", "moon", "cloud"):
        element = first(result, kind)
        assert element.box[3] < horizon, kind
    for star in first(result, "stars").points:
        assert star[1] < horizon
    ridge = first(result, "mountains").points[:-2]
    assert max(y for _, y in ridge) <= horizon


def test_foreground_stands_on_the_ground() -> None:
    result = layout("a house, three trees and flowers", width=1536, height=1024)
    sky, ground = (e for e in result.elements if e.kind == "gradient")
    assert sky.box == (0, 0, 1536, 1024)
    horizon = ground.box[1]
    assert ground.box[3] == 1024
    standing = [e for e in result.elements if e.kind in ("house", "tree", "flower")]
    assert [e.kind for e in standing].count("tree") == 3
    for element in standing:
        assert horizon < element.box[3] <= 1024
        assert element.box[0] >= 0 and element.box[2] <= 1536


def test_single_shape_is_centred() -> None:
    square = first(layout("a red square"), "square")
    centre = ((square.box[0] + square.box[2]) / 2, (square.box[1] + square.box[3]) / 2)
    assert abs(centre[0] - 512) < 0.1 * 1024
    assert abs(centre[1] - 512) < 0.1 * 1024
    assert square.colours[0] == RED


def test_many_shapes_spread_without_overlapping() -> None:
    boxes = [e.box for e in layout("six circles", 1792, 1024).elements if e.kind == "circle"]
    assert len(boxes) == 6
    for index, a in enumerate(boxes):
        for b in boxes[index + 1 :]:
            assert a[2] <= b[0] or b[2] <= a[0] or a[3] <= b[1] or b[3] <= a[1]


def test_text_becomes_a_banner_last() -> None:
    result = layout('a house and "Welcome home"')
    assert result.elements[-1].kind == "text"
    assert result.elements[-1].text == "Welcome home"
    alone = layout('"Hi"').elements[-1]
    assert abs((alone.box[1] + alone.box[3]) / 2 - 512) < 10


def test_moon_and_stars_make_the_night() -> None:
    sky = first(layout("the moon"), "gradient")
    assert max(sum(stop) for stop in sky.colours) < 300


def test_unknown_prompt_gets_abstract_shapes_in_its_colours() -> None:
    result = layout("something lovely in orange")
    assert result.elements[0].kind == "corners"
    assert len(result.elements) > 3
    assert not any(element.backdrop for element in result.elements[1:])


def test_compose_is_a_pure_function_of_its_inputs() -> None:
    assert layout("trees and a house", seed=5) == layout("trees and a house", seed=5)
    assert layout("trees and a house", seed=5) != layout("trees and a house", seed=6)


@pytest.mark.parametrize("size", [(64, 64), (64, 300), (300, 64), (1792, 1024), (1024, 1792)])
def test_every_element_has_a_sane_box(size: tuple[int, int]) -> None:
    width, height = size
    prompt = 'sun moon stars clouds birds rainbow mountains sea boat house trees flowers hills "hi"'
    for element in layout(prompt, width, height).elements:
        x0, y0, x1, y1 = element.box
        assert x0 <= x1 and y0 <= y1, element
