"""The official ``openai`` SDK's ``images.edit`` and ``images.create_variation``."""

from __future__ import annotations

import base64
import io
from collections.abc import Iterator

import openai
import pytest
from PIL import Image, ImageChops

from tests.api.images import mask, png
from tests.conftest import LiveServer


@pytest.fixture
def client(live_server: LiveServer) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(
        base_url=f"{live_server.base_url}/v1", api_key=live_server.key, max_retries=0
    ) as sdk:
        yield sdk


def decode(b64: str | None) -> Image.Image:
    assert b64 is not None
    return Image.open(io.BytesIO(base64.b64decode(b64)))


def test_edit_one_image(client: openai.OpenAI) -> None:
    result = client.images.edit(
        model="sketch", image=("photo.png", png((512, 512)), "image/png"), prompt="a green tree"
    )
    assert result.data is not None and decode(result.data[0].b64_json).size == (512, 512)


def test_edit_several_images(client: openai.OpenAI) -> None:
    images = [(f"{i}.png", png((256, 256), (40 * i, 90, 150)), "image/png") for i in range(3)]
    result = client.images.edit(model="sketch", image=images, prompt="a pink heart", n=2)
    assert result.data is not None and len(result.data) == 2


def test_edit_with_mask_changes_only_the_masked_area(client: openai.OpenAI) -> None:
    source = png((512, 512))
    hole = (0, 256, 512, 512)
    result = client.images.edit(
        model="sketch",
        image=("photo.png", source, "image/png"),
        mask=("mask.png", mask((512, 512), hole), "image/png"),
        prompt="blue sea",
    )
    assert result.data is not None
    edited = decode(result.data[0].b64_json).convert("RGB")
    original = Image.open(io.BytesIO(source)).convert("RGB")
    assert (
        ImageChops.difference(
            edited.crop((0, 0, 512, 256)), original.crop((0, 0, 512, 256))
        ).getbbox()
        is None
    )
    assert ImageChops.difference(edited.crop(hole), original.crop(hole)).getbbox() is not None


def test_create_variation(client: openai.OpenAI) -> None:
    with pytest.deprecated_call():  # the SDK marks variations deprecated; they still work
        result = client.images.create_variation(
            model="sketch", image=("photo.png", png((256, 256)), "image/png"), n=2, size="256x256"
        )
    assert result.data is not None and len(result.data) == 2
    assert result.data[0].b64_json != result.data[1].b64_json


def test_edit_errors_reach_the_sdk(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as refused:
        client.images.edit(
            model="sketch", image=("x.png", b"not an image at all", "image/png"), prompt="x"
        )
    assert refused.value.body is not None and refused.value.body["param"] == "image"  # type: ignore[index]
