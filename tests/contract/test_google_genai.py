"""The official ``google-genai`` SDK as a client of a live gateway (``/v1beta``)."""

from __future__ import annotations

import asyncio
import io
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from google import genai
from google.genai import errors, types
from PIL import Image

from imagegate.core.catalog import load_catalog
from tests.api.images import png
from tests.conftest import LiveServer

_ENVIRONMENT = (
    "GOOGLE_API_KEY",
    "GEMINI_API_KEY",
    "GOOGLE_GENAI_USE_VERTEXAI",
    "GOOGLE_GENAI_USE_ENTERPRISE",
    "GOOGLE_CLOUD_PROJECT",
    "GOOGLE_CLOUD_LOCATION",
    "GOOGLE_GENAI_API_VERSION",
)


@pytest.fixture(autouse=True)
def loopback_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """The SDK may talk to the live gateway and nothing else; no environment steers it."""
    for name in _ENVIRONMENT:
        monkeypatch.delenv(name, raising=False)
    connect = socket.socket.connect

    def guarded(sock: socket.socket, address: Any) -> None:
        assert address[0] in ("127.0.0.1", "::1"), f"the SDK tried to reach {address}"
        connect(sock, address)

    monkeypatch.setattr(socket.socket, "connect", guarded)


def options(live_server: LiveServer) -> types.HttpOptions:
    return types.HttpOptions(base_url=live_server.base_url, api_version="v1beta")


@pytest.fixture
def client(live_server: LiveServer) -> Iterator[genai.Client]:
    with genai.Client(api_key=live_server.key, http_options=options(live_server)) as client:
        yield client


def inline_images(response: types.GenerateContentResponse) -> list[Image.Image]:
    assert response.candidates
    images: list[Image.Image] = []
    for candidate in response.candidates:
        assert candidate.content is not None and candidate.content.parts is not None
        for part in candidate.content.parts:
            if part.inline_data is not None and part.inline_data.data is not None:
                images.append(Image.open(io.BytesIO(part.inline_data.data)))
    return images


def texts(response: types.GenerateContentResponse) -> list[str]:
    assert response.candidates and response.candidates[0].content
    return [part.text for part in response.candidates[0].content.parts or [] if part.text]


def test_generate_image_only(client: genai.Client) -> None:
    response = client.models.generate_content(
        model="sketch",
        contents="a red house under a yellow sun",
        config=types.GenerateContentConfig(response_modalities=["IMAGE"]),
    )
    (image,) = inline_images(response)
    assert (image.format, image.size) == ("PNG", (1024, 1024))
    assert texts(response) == []
    assert response.candidates and response.candidates[0].finish_reason == types.FinishReason.STOP
    usage = response.usage_metadata
    assert usage is not None and usage.total_token_count and usage.total_token_count > 0
    assert response.model_version == "sketch"


def test_generate_text_and_image_saves_a_real_png(client: genai.Client, tmp_path: Path) -> None:
    response = client.models.generate_content(
        model="sketch",
        contents="three pink flowers in a green meadow",
        config=types.GenerateContentConfig(
            response_modalities=["TEXT", "IMAGE"],
            image_config=types.ImageConfig(aspect_ratio="16:9"),
            candidate_count=2,
            seed=11,
        ),
    )
    assert response.candidates and len(response.candidates) == 2
    assert texts(response) == ["Here is a picture of three pink flowers and the green hills."]
    images = inline_images(response)
    assert [image.size for image in images] == [(1280, 720)] * 2  # exactly 16:9
    path = tmp_path / "out.png"
    images[0].save(path)
    with Image.open(path) as saved:
        assert (saved.format, saved.size) == ("PNG", (1280, 720))


def test_edit_with_an_input_image(client: genai.Client) -> None:
    source = types.Part.from_bytes(data=png((512, 512)), mime_type="image/png")
    contents: list[types.PartUnionDict] = [source, "add a yellow sun"]
    response = client.models.generate_content(model="sketch", contents=contents)
    assert texts(response)[0].startswith("Here is your edited picture")
    assert inline_images(response)[0].size == (512, 512)


def test_multi_turn_edit_in_a_chat(client: genai.Client) -> None:
    chat = client.chats.create(
        model="sketch",
        config=types.GenerateContentConfig(image_config=types.ImageConfig(aspect_ratio="2:3")),
    )
    first = chat.send_message("a blue house by the sea")
    assert inline_images(first)[0].size == (1024, 1536)
    second = chat.send_message("now add a white moon")
    assert texts(second) == ["Here is your edited picture, now with the white moon."]
    assert inline_images(second)[0].size == (1024, 1536)
    assert len(chat.get_history()) == 4


def test_stream(client: genai.Client) -> None:
    chunks = list(
        client.models.generate_content_stream(model="sketch", contents="a boat on the sea")
    )
    assert len(chunks) == 2
    assert chunks[0].text == "Here is a picture of a boat and the sea."
    (image,) = inline_images(chunks[1])
    assert image.size == (1024, 1024)
    assert chunks[1].candidates and chunks[1].candidates[0].finish_reason == types.FinishReason.STOP
    assert chunks[1].usage_metadata is not None


async def test_async_client(client: genai.Client) -> None:
    async with client.aio as aio:
        response = await aio.models.generate_content(model="sketch", contents="orange sun")
    # The SDK closes its aiohttp session on exit; the sockets close on the loop's next turns
    # (aiohttp's graceful-shutdown advice), which must come before this test's loop ends.
    await asyncio.sleep(0.05)
    assert inline_images(response)[0].size == (1024, 1024)


@pytest.mark.filterwarnings("ignore:The generate_images method is deprecated")
def test_generate_images_through_predict(live_server: LiveServer) -> None:
    # google-genai >= 2.20 offers Imagen only in Vertex mode; its express mode (an API key) with
    # a base URL posts to {base}/v1beta/models/{model}:predict when the model is "models/…".
    vertex = genai.Client(vertexai=True, api_key=live_server.key, http_options=options(live_server))
    with vertex:
        result = vertex.models.generate_images(
            model="models/sketch",
            prompt="purple mountains under a starry sky",
            config=types.GenerateImagesConfig(number_of_images=2, aspect_ratio="16:9"),
        )
    assert result.generated_images and len(result.generated_images) == 2
    for generated in result.generated_images:
        assert generated.image is not None and generated.image.image_bytes is not None
        assert generated.image.mime_type == "image/png"
        image = Image.open(io.BytesIO(generated.image.image_bytes))
        assert (image.format, image.size) == ("PNG", (1280, 720))


def test_models_list_and_get(client: genai.Client) -> None:
    names = [model.name for model in client.models.list()]
    assert "models/sketch" in names
    model = client.models.get(model="sketch")
    assert model.display_name and model.supported_actions == [
        "generateContent",
        "streamGenerateContent",
        "predict",
    ]


def test_bad_key_is_unauthenticated(live_server: LiveServer) -> None:
    stranger = genai.Client(api_key="wrong", http_options=options(live_server))
    with stranger, pytest.raises(errors.ClientError) as raised:
        stranger.models.generate_content(model="sketch", contents="sun")
    assert (raised.value.code, raised.value.status) == (401, "UNAUTHENTICATED")


def test_unknown_model_is_not_found(client: genai.Client) -> None:
    with pytest.raises(errors.ClientError) as raised:
        client.models.generate_content(model="no-such-model", contents="sun")
    assert (raised.value.code, raised.value.status) == (404, "NOT_FOUND")


def test_bad_aspect_ratio_is_invalid_argument(client: genai.Client) -> None:
    config = types.GenerateContentConfig(image_config=types.ImageConfig(aspect_ratio="5:1"))
    with pytest.raises(errors.ClientError) as raised:
        client.models.generate_content(model="sketch", contents="sun", config=config)
    assert (raised.value.code, raised.value.status) == (400, "INVALID_ARGUMENT")
    assert "aspectRatio" in str(raised.value.message)


REFERENCE_MODEL = """
[[models]]
id = "gemini-2.5-flash-image"
name = "Gemini 2.5 Flash Image (served by the built-in renderer)"
provider = "Google"
provider_code = "google"
created = 1756252800
features = ["text-to-image", "image-edit"]

[models.generate]
sizes = ["1024x1024", "832x1248", "1248x832", "768x1344", "1344x768", "1536x672"]
default_size = "1024x1024"
max_n = 4
qualities = ["auto"]
default_quality = "auto"
prompt_max_chars = 32000

[[models.deployments]]
provider = "local"
model = "sketch"
"""


@pytest.fixture
def reference_model(live_server: LiveServer, tmp_path: Path) -> Iterator[None]:
    """The reference API's model id, routed by the operator's config to the built-in renderer
    (whether or not the built-in catalogue already lists it with a Google deployment)."""
    config = tmp_path / "imagegate.toml"
    config.write_text(REFERENCE_MODEL)
    images = live_server.services.images
    original = images.catalog
    images.catalog = load_catalog(images._registry, config)
    yield
    images.catalog = original


@pytest.mark.usefixtures("reference_model")
def test_the_reference_quick_start_runs_unchanged(
    live_server: LiveServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Google's Gemini image quick start; only the base URL and the key differ."""
    monkeypatch.chdir(tmp_path)
    api_key, base_url = live_server.key, live_server.base_url

    # --- the quick start, as published (the SDK's types reject a few of its lines) ---
    from io import BytesIO

    from google import genai
    from PIL import Image

    client = genai.Client(
        api_key=api_key, http_options={"base_url": base_url, "api_version": "v1beta"}
    )
    prompt = "Create a picture of a nano banana dish in a fancy restaurant with a Gemini theme"
    response = client.models.generate_content(model="gemini-2.5-flash-image", contents=[prompt])  # type: ignore[arg-type]
    for part in response.candidates[0].content.parts:  # type: ignore[index, union-attr]
        if part.text is not None:
            print(part.text)
        elif part.inline_data is not None:
            image = Image.open(BytesIO(part.inline_data.data))  # type: ignore[arg-type]
            image.save("generated_image.png")
    # --- end of the quick start ---
    client.close()

    assert capsys.readouterr().out.startswith("Here is")
    with Image.open(tmp_path / "generated_image.png") as saved:
        assert (saved.format, saved.size) == ("PNG", (1024, 1024))
        assert len(saved.getcolors(maxcolors=1 << 16) or []) > 1


@pytest.mark.usefixtures("reference_model")
def test_the_newer_quick_start_form_runs_unchanged(
    live_server: LiveServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same quick start in the SDK's newer style (``response.parts``, ``as_image()``)."""
    monkeypatch.chdir(tmp_path)
    with genai.Client(api_key=live_server.key, http_options=options(live_server)) as client:
        response = client.models.generate_content(
            model="gemini-2.5-flash-image",
            contents=["Create a picture of a yellow banana on a blue plate"],  # type: ignore[arg-type]
        )
        for part in response.parts or []:
            if part.text is not None:
                print(part.text)
            elif (image := part.as_image()) is not None:
                image.save("generated_image.png")
    with Image.open(tmp_path / "generated_image.png") as saved:
        assert (saved.format, saved.size) == ("PNG", (1024, 1024))
