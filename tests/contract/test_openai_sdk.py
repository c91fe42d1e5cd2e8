"""The official ``openai`` SDK as a client of a live gateway."""

from __future__ import annotations

import base64
import io
from collections.abc import Iterator

import httpx
import openai
import pytest
from PIL import Image

from tests.conftest import LiveServer


@pytest.fixture
def client(live_server: LiveServer) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(
        base_url=f"{live_server.base_url}/v1", api_key=live_server.key, max_retries=0
    ) as sdk:
        yield sdk


def test_generate_b64_json(client: openai.OpenAI) -> None:
    result = client.images.generate(
        model="sketch", prompt="a yellow sun over green mountains", size="1024x1024"
    )
    assert result.data is not None and result.data[0].b64_json is not None
    image = Image.open(io.BytesIO(base64.b64decode(result.data[0].b64_json)))
    assert (image.format, image.size) == ("PNG", (1024, 1024))
    assert result.usage is not None and result.usage.total_tokens > 0
    assert result.size == "1024x1024" and result.output_format == "png"


def test_generate_url_then_download(client: openai.OpenAI) -> None:
    result = client.images.generate(
        model="sketch", prompt="a blue square", size="512x512", response_format="url", n=2
    )
    assert result.data is not None and len(result.data) == 2
    for item in result.data:
        assert item.url is not None
        download = httpx.get(item.url)
        assert download.status_code == 200
        assert Image.open(io.BytesIO(download.content)).size == (512, 512)


def test_streaming_partial_images(client: openai.OpenAI) -> None:
    stream = client.images.generate(
        model="sketch",
        prompt="a white moon and stars",
        size="256x256",
        stream=True,
        partial_images=2,
    )
    events = list(stream)
    assert [event.type for event in events] == [
        "image_generation.partial_image",
        "image_generation.partial_image",
        "image_generation.completed",
    ]
    partial, completed = events[0], events[-1]
    assert partial.type == "image_generation.partial_image" and partial.partial_image_index == 0
    assert completed.type == "image_generation.completed" and completed.usage is not None
    final = Image.open(io.BytesIO(base64.b64decode(completed.b64_json)))
    assert final.size == (256, 256)
    assert completed.b64_json != partial.b64_json


def test_models_list_and_retrieve(client: openai.OpenAI) -> None:
    ids = [model.id for model in client.models.list()]
    assert "sketch" in ids
    assert client.models.retrieve("sketch").owned_by == "local"


def test_errors_become_sdk_exceptions(client: openai.OpenAI, live_server: LiveServer) -> None:
    with pytest.raises(openai.BadRequestError) as bad:
        client.images.generate(model="sketch", prompt="x", size="999x999")
    assert bad.value.body is not None and bad.value.body["param"] == "size"  # type: ignore[index]
    with pytest.raises(openai.NotFoundError):
        client.images.generate(model="no-such-model", prompt="x")
    stranger = openai.OpenAI(base_url=f"{live_server.base_url}/v1", api_key="wrong", max_retries=0)
    with stranger, pytest.raises(openai.AuthenticationError):
        stranger.images.generate(model="sketch", prompt="x")
