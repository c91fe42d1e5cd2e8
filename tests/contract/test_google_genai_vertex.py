"""Imagen through google-genai the way the README documents it: ``vertexai=True`` with the
imagegate key and the gateway as ``base_url`` (express mode), or with a project, a location
and the key as an OAuth token; each SDK path form lands on the gateway's predict."""

from __future__ import annotations

import io
from collections.abc import Iterator

import pytest
from google import genai
from google.genai import errors, types
from google.oauth2.credentials import Credentials
from PIL import Image

from tests.conftest import LiveServer
from tests.contract.test_google_genai import loopback_only

__all__ = ["loopback_only"]  # the fixture keeps the SDK on loopback and out of the environment

pytestmark = pytest.mark.filterwarnings("ignore:The generate_images method is deprecated")


def express(live_server: LiveServer, api_version: str | None = None, key: str = "") -> genai.Client:
    """The documented setup: the key as the Vertex API key, the gateway as base_url."""
    options = types.HttpOptions(base_url=live_server.base_url, api_version=api_version)
    return genai.Client(vertexai=True, api_key=key or live_server.key, http_options=options)


def sizes(result: types.GenerateImagesResponse) -> list[tuple[str | None, tuple[int, int]]]:
    assert result.generated_images
    found = []
    for generated in result.generated_images:
        assert generated.image is not None and generated.image.image_bytes is not None
        image = Image.open(io.BytesIO(generated.image.image_bytes))
        found.append((generated.image.mime_type, image.size))
    return found


@pytest.mark.parametrize("api_version", [None, "v1beta1", "v1"])
@pytest.mark.parametrize("model", ["sketch", "imagegate/sketch"])
def test_express_mode_generate_images(
    live_server: LiveServer, api_version: str | None, model: str
) -> None:
    with express(live_server, api_version) as client:
        result = client.models.generate_images(
            model=model,
            prompt="purple mountains under a starry sky",
            config=types.GenerateImagesConfig(number_of_images=2, aspect_ratio="4:3"),
        )
    assert sizes(result) == [("image/png", (1152, 864))] * 2


@pytest.fixture
def scoped(live_server: LiveServer) -> Iterator[genai.Client]:
    """A project and location (the path gets ``projects/{p}/locations/{l}/``) with the
    imagegate key as the OAuth access token the SDK sends as a bearer."""
    with genai.Client(
        vertexai=True,
        project="my-project",
        location="us-central1",
        credentials=Credentials(token=live_server.key),  # type: ignore[no-untyped-call]
        http_options=types.HttpOptions(base_url=live_server.base_url),
    ) as client:
        yield client


def test_project_and_location_generate_images(scoped: genai.Client) -> None:
    result = scoped.models.generate_images(
        model="sketch",
        prompt="a red house",
        config=types.GenerateImagesConfig(number_of_images=1, aspect_ratio="1:1"),
    )
    assert sizes(result) == [("image/png", (1024, 1024))]


def test_errors_in_googles_shape(live_server: LiveServer, scoped: genai.Client) -> None:
    with express(live_server) as client, pytest.raises(errors.ClientError) as missing:
        client.models.generate_images(model="no-such-model", prompt="sun")
    assert (missing.value.code, missing.value.status) == (404, "NOT_FOUND")
    with express(live_server, key="wrong") as client, pytest.raises(errors.ClientError) as denied:
        client.models.generate_images(model="sketch", prompt="sun")
    assert (denied.value.code, denied.value.status) == (401, "UNAUTHENTICATED")
    with pytest.raises(errors.ClientError) as empty:
        scoped.models.generate_images(model="sketch", prompt="")
    assert (empty.value.code, empty.value.status) == (400, "INVALID_ARGUMENT")


def test_the_same_vertex_client_generates_content(live_server: LiveServer) -> None:
    config = types.GenerateContentConfig(
        response_modalities=["IMAGE"], image_config=types.ImageConfig(aspect_ratio="16:9")
    )
    with express(live_server) as client:
        response = client.models.generate_content(
            model="sketch", contents="green hills", config=config
        )
        streamed = list(
            client.models.generate_content_stream(model="sketch", contents="a moon", config=config)
        )
    assert response.candidates and response.candidates[0].content
    parts = response.candidates[0].content.parts or []
    data = [part.inline_data.data for part in parts if part.inline_data and part.inline_data.data]
    assert data and Image.open(io.BytesIO(data[0])).size == (1280, 720)
    assert streamed and streamed[-1].candidates
