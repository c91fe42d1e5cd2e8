"""Official SDKs → a live imagegate → fake upstreams on loopback.

``openai`` → imagegate → fake OpenAI (generate, edit with several images and a mask, stream,
errors); ``google-genai`` → imagegate → fake OpenAI (cross-format: a Gemini client drawing with
gpt-image-1). The gateway reads ``OPENAI_API_KEY``/``OPENAI_BASE_URL`` at start, as a user's
deployment would.
"""

from __future__ import annotations

import base64
import io
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
from PIL import Image

from imagegate.core.routing import RouterSettings
from imagegate.providers.fakes import Blocked, Fail, FakeOpenAI, serve_in_thread
from imagegate.settings import Settings
from tests.api.images import mask, png
from tests.conftest import ADMIN_KEY
from tests.contract.live_kit import Stack, genai_images, live_gateway

UPSTREAM_KEY = "sk-upstream-contract"
upstream = FakeOpenAI(UPSTREAM_KEY)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    fake = serve_in_thread(upstream.app)
    with pytest.MonkeyPatch.context() as env:
        env.setenv("OPENAI_API_KEY", UPSTREAM_KEY)
        env.setenv("OPENAI_BASE_URL", f"{fake.base_url}/v1")
        for name in ("GOOGLE_API_KEY", "GEMINI_API_KEY", "GOOGLE_GENAI_USE_VERTEXAI"):
            env.delenv(name, raising=False)
        data_dir = tmp_path_factory.mktemp("sdk-upstreams")
        settings = Settings(data_dir=data_dir, admin_key=ADMIN_KEY)
        try:
            with live_gateway(
                settings, RouterSettings(backoff_base=0.01, failure_threshold=50)
            ) as s:
                yield s
        finally:
            fake.stop()


@pytest.fixture(autouse=True)
def loopback_only(monkeypatch: pytest.MonkeyPatch) -> None:
    upstream.reset()
    connect = socket.socket.connect

    def guarded(sock: socket.socket, address: Any) -> None:
        assert address[0] in ("127.0.0.1", "::1"), f"tried to reach {address}"
        connect(sock, address)

    monkeypatch.setattr(socket.socket, "connect", guarded)


@pytest.fixture
def client(stack: Stack) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=f"{stack.gateway}/v1", api_key=stack.key, max_retries=0) as sdk:
        yield sdk


def test_openai_sdk_generates_through_the_upstream(client: openai.OpenAI) -> None:
    result = client.images.generate(
        model="gpt-image-1", prompt="a red kite", size="1024x1536", quality="high", n=2
    )
    assert result.data is not None and len(result.data) == 2
    assert result.data[0].b64_json is not None
    image = Image.open(io.BytesIO(base64.b64decode(result.data[0].b64_json)))
    assert image.size == (1024, 1536)
    assert result.usage is not None and result.usage.output_tokens == 2 * 4160
    assert result.quality == "high" and result.size == "1024x1536"
    (call,) = upstream.calls_to("generate")
    assert call.headers["authorization"] == f"Bearer {UPSTREAM_KEY}" and call.json["n"] == 2


def test_openai_sdk_edit_with_several_images_and_a_mask(
    client: openai.OpenAI, tmp_path: Path
) -> None:
    result = client.images.edit(
        model="gpt-image-1",
        image=[("a.png", png((128, 128)), "image/png"), ("b.png", png((128, 128)), "image/png")],
        mask=("m.png", mask((128, 128), (0, 0, 64, 64)), "image/png"),
        prompt="make it night",
        input_fidelity="high",
    )
    assert result.data is not None and result.data[0].b64_json
    (call,) = upstream.calls_to("edit")
    assert len(call.files["image[]"]) == 2 and "mask" in call.files
    assert call.form["input_fidelity"] == "high"


def test_openai_sdk_streams_through_the_upstream(client: openai.OpenAI) -> None:
    stream = client.images.generate(
        model="gpt-image-1", prompt="a moon", size="1024x1024", stream=True, partial_images=2
    )
    events = list(stream)
    assert [event.type for event in events] == [
        "image_generation.partial_image",
        "image_generation.partial_image",
        "image_generation.completed",
    ]
    completed = events[-1]
    assert completed.type == "image_generation.completed" and completed.usage.total_tokens > 0


def test_openai_sdk_sees_upstream_errors_in_openais_shape(client: openai.OpenAI) -> None:
    upstream.script("generate", Blocked())
    with pytest.raises(openai.BadRequestError) as blocked:
        client.images.generate(model="gpt-image-1", prompt="something forbidden")
    assert blocked.value.code == "content_policy_violation"
    upstream.script("generate", Fail(500), Fail(500), Fail(500))
    with pytest.raises(openai.InternalServerError) as failed:
        client.images.generate(model="gpt-image-1", prompt="x")
    assert failed.value.status_code == 502 and UPSTREAM_KEY not in str(failed.value.body)


def test_google_genai_draws_with_an_openai_model(stack: Stack) -> None:
    (image,) = genai_images(
        stack.gateway, stack.key, "gpt-image-1", "a lighthouse in the fog", "3:2"
    )
    assert image.size == (1536, 1024)
    (call,) = upstream.calls_to("generate")
    assert call.json["model"] == "gpt-image-1" and call.json["size"] == "1536x1024"
