"""SVG output of the local ``sketch`` renderer: the same composition as the raster, as shapes.

No SVG rasteriser is a dependency, so these are structural checks: the document parses as
XML in the SVG namespace, has its size set, and holds the shapes, gradients, colours and text
the prompt asks for.
"""

from __future__ import annotations

import random
import re
import xml.etree.ElementTree as ET
from collections import Counter
from dataclasses import replace

import pytest

from imagegate.core.requests import ImageRequest, ImageResult, PartialImage
from imagegate.errors import InvalidRequest
from imagegate.providers.local import LocalProvider
from imagegate.providers.local.draw import _DRAWERS, render_seed
from imagegate.providers.local.layout import compose
from imagegate.providers.local.scene import parse_prompt
from imagegate.providers.local.svg import _SVG_DRAWERS, SVG_NAMESPACE, render_svg
from imagegate.providers.local.usage import estimate_usage
from imagegate.providers.local.vocab import COLOURS
from tests.providers.inputs_kit import CTX, as_input, ellipse_mask, photo, red_disc, tool_request
from tests.providers.test_local_provider import request

NS = {"svg": SVG_NAMESPACE}
STRUCTURE = {"svg", "defs", "linearGradient", "stop", "mask", "tspan"}
"""Tags that hold or style shapes rather than draw one."""
SCENE = 'a red house under a yellow sun by the blue sea, clouds and "Hello & <you>"'


def svg_request(prompt: str = SCENE, **changes: object) -> ImageRequest:
    return request(prompt, output_format="svg", width=384, height=256, **changes)


def parse(data: bytes) -> ET.Element:
    return ET.fromstring(data)


def kinds(root: ET.Element) -> Counter[str]:
    return Counter(element.tag.removeprefix(f"{{{SVG_NAMESPACE}}}") for element in root.iter())


def colours(data: bytes) -> set[bytes]:
    return set(re.findall(rb'(?:fill|stroke|stop-color)="(#[0-9a-f]{6})"', data))


def hex_of(name: str) -> bytes:
    return "#{:02x}{:02x}{:02x}".format(*COLOURS[name]).encode()


async def test_generate_svg_returns_a_valid_svg_document() -> None:
    result = await LocalProvider().generate(svg_request(), CTX)
    (image,) = result.images
    assert (image.output_format, image.width, image.height) == ("svg", 384, 256)
    assert image.mime_type == "image/svg+xml"
    assert image.data.startswith(b'<?xml version="1.0" encoding="UTF-8"?>')
    root = parse(image.data)
    assert root.tag == f"{{{SVG_NAMESPACE}}}svg"
    assert (root.get("width"), root.get("height"), root.get("viewBox")) == (
        "384",
        "256",
        "0 0 384 256",
    )
    found = kinds(root)
    assert found["linearGradient"] >= 2  # the sky and the sea
    assert found["stop"] >= 4
    assert found["ellipse"] >= 6  # the sun, its glow and the clouds' puffs
    assert found["polygon"] >= 1  # the house's roof
    assert found["rect"] >= 4  # the sky, the sea, the walls, the windows
    assert found["text"] == 1
    assert result.usage == estimate_usage(SCENE, 384, 256, "auto", 1)


async def test_svg_holds_the_prompts_colours_and_text() -> None:
    result = await LocalProvider().generate(svg_request(), CTX)
    data = result.images[0].data
    assert hex_of("red") in colours(data)
    assert hex_of("yellow") in colours(data)
    root = parse(data)
    (text,) = root.iter(f"{{{SVG_NAMESPACE}}}text")
    assert "".join(text.itertext()) == "Hello & <you>"
    gradient = root.find("svg:defs/svg:linearGradient", NS)
    assert gradient is not None
    first = root.find("svg:rect", NS)
    assert first is not None
    assert first.get("fill") == f"url(#{gradient.get('id')})"
    assert (first.get("width"), first.get("height")) == ("384", "256")


@pytest.mark.parametrize(
    "prompt",
    [
        "a rainbow over snowy mountains with birds and a forest",
        "a crescent moon and stars at night over the sea with boats",
        "three red hearts, a blue square, a green triangle and two stars",
        "a garden of flowers with a cottage and pine trees at sunset",
        "green hills, a house and clouds on a rainy day",
        '"Big Sale" and "today only"',
        "purple and orange",
        "",
    ],
)
async def test_every_scene_draws_as_svg(prompt: str) -> None:
    vector = render_svg(prompt, 320, 240, seed=2, variant=1, transparent=False)
    root = parse(vector.final)
    rng = random.Random(render_seed(prompt, 320, 240, 2, 1))
    layout = compose(parse_prompt(prompt), 320, 240, rng)
    drawn = sum(count for tag, count in kinds(root).items() if tag not in STRUCTURE)
    assert drawn >= len(layout.elements)
    assert vector.final == render_svg(prompt, 320, 240, seed=2, variant=1, transparent=False).final


def test_every_raster_drawer_has_a_vector_form() -> None:
    assert set(_SVG_DRAWERS) == set(_DRAWERS)


async def test_svg_is_deterministic_per_seed_and_differs_per_image() -> None:
    provider = LocalProvider()
    first = await provider.generate(svg_request(n=2, extras={"seed": 4}), CTX)
    again = await provider.generate(svg_request(n=2, extras={"seed": 4}), CTX)
    other = await provider.generate(svg_request(n=2, extras={"seed": 5}), CTX)
    assert [i.data for i in first.images] == [i.data for i in again.images]
    assert first.images[0].data != first.images[1].data
    assert first.images[0].data != other.images[0].data


async def test_transparent_svg_leaves_the_backdrop_out() -> None:
    opaque = (await LocalProvider().generate(svg_request("a red circle"), CTX)).images[0].data
    clear = (
        (await LocalProvider().generate(svg_request("a red circle", background="transparent"), CTX))
        .images[0]
        .data
    )
    assert kinds(parse(opaque))["linearGradient"] == 1
    assert kinds(parse(clear))["linearGradient"] == 0
    assert hex_of("red") in colours(clear)


async def test_streaming_svg_yields_growing_partial_documents() -> None:
    events = [e async for e in LocalProvider().stream(svg_request(partial_images=2), CTX)]
    *previews, final = events
    assert isinstance(final, ImageResult)
    sizes = []
    for preview in previews:
        assert isinstance(preview, PartialImage)
        assert preview.image.output_format == "svg"
        sizes.append(sum(kinds(parse(preview.image.data)).values()))
    sizes.append(sum(kinds(parse(final.images[0].data)).values()))
    assert len(sizes) == 3
    assert sizes[0] < sizes[1] < sizes[2]


def tool_requests() -> dict[str, ImageRequest]:
    picture = as_input(photo((64, 64)))
    mask = as_input(ellipse_mask((64, 64), (10, 10, 40, 40)))
    return {
        "edit": tool_request("edit", (picture,), prompt="a sun"),
        "variation": tool_request("variation", (picture,)),
        "upscale": tool_request("upscale", (picture,), width=128, height=128, scale=2.0),
        "outpaint": tool_request("outpaint", (picture,), padding=(8, 8, 8, 8)),
        "erase": tool_request("erase", (picture,), mask=mask),
        "remove_background": tool_request("remove_background", (as_input(red_disc()),)),
        "replace_background": tool_request("replace_background", (picture,)),
        "enhance": tool_request("enhance", (picture,)),
        "blend": tool_request("blend", (picture, picture)),
        "describe": tool_request("describe", (picture,)),
    }


@pytest.mark.parametrize("operation", list(tool_requests()))
async def test_svg_is_refused_for_every_other_operation(operation: str) -> None:
    svg = replace(tool_requests()[operation], output_format="svg")
    with pytest.raises(InvalidRequest) as caught:
        await LocalProvider().generate(svg, CTX)
    assert caught.value.param == "output_format"
    with pytest.raises(InvalidRequest):
        _ = [event async for event in LocalProvider().stream(svg, CTX)]
