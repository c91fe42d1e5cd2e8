"""Clients of each front → a live imagegate → the Bria, Stability, Ark (Seedream) and xAI fakes.

The gateway is configured as an operator would: ``BRIA_API_TOKEN``, ``STABILITY_API_KEY``,
``ARK_API_KEY``, ``XAI_API_KEY`` and their base-URL variables pointing at the fakes (an
``IMAGEGATE_CONFIG`` only shortens the poll intervals). Each test asserts what the fake received
(auth header, translated fields) and what the client got: an image re-hosted by imagegate, of
the upstream's size.
"""

from __future__ import annotations

import base64
import io
import time
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pybase64
import pytest
from PIL import Image
from typer.testing import CliRunner

from imagegate.cli import app as cli
from imagegate.core.routing import RouterSettings
from imagegate.providers.fakes import (
    Blocked,
    Fail,
    FakeArk,
    FakeBria,
    FakeStability,
    FakeXAI,
    RateLimit,
    serve_in_thread,
)
from imagegate.settings import Settings
from tests.api.images import mask, png
from tests.conftest import ADMIN_KEY
from tests.contract.live_kit import Stack, genai_images, live_gateway

KEYS = {"bria": "bria-contract", "stability": "sk-stab-contract", "ark": "ark-contract",
        "xai": "xai-contract"}  # fmt: skip
bria, stability = FakeBria(KEYS["bria"]), FakeStability(KEYS["stability"])
ark, xai = FakeArk(KEYS["ark"]), FakeXAI(KEYS["xai"])
FAKES = (bria, stability, ark, xai)
CONFIG = """
[[models]]
id = "bria-fibo"
[[models.deployments]]
provider = "bria"
model = "fibo"
credentials = { api_token = ["BRIA_API_TOKEN"] }
base_url_env = "BRIA_BASE_URL"
options = { poll_interval = 0.02 }
"""


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    servers = [serve_in_thread(fake.app) for fake in FAKES]
    bases = dict(
        zip(("bria", "stability", "ark", "xai"), (s.base_url for s in servers), strict=True)
    )
    data_dir = tmp_path_factory.mktemp("more-upstreams")
    config = data_dir / "imagegate.toml"
    config.write_text(CONFIG)
    with pytest.MonkeyPatch.context() as env:
        env.setenv("BRIA_API_TOKEN", KEYS["bria"])
        env.setenv("BRIA_BASE_URL", bases["bria"])
        env.setenv("STABILITY_API_KEY", KEYS["stability"])
        env.setenv("STABILITY_BASE_URL", bases["stability"])
        env.setenv("ARK_API_KEY", KEYS["ark"])
        env.setenv("ARK_BASE_URL", bases["ark"])
        env.setenv("XAI_API_KEY", KEYS["xai"])
        env.setenv("XAI_BASE_URL", f"{bases['xai']}/v1")
        env.setenv("IMAGEGATE_CONFIG", str(config))
        for name in ("OPENAI_API_KEY", "GEMINI_API_KEY", "GOOGLE_API_KEY", "BFL_API_KEY"):
            env.delenv(name, raising=False)
        settings = Settings(data_dir=data_dir / "data", admin_key=ADMIN_KEY, config=config,
                            task_poll_seconds=0.05)  # fmt: skip
        router = RouterSettings(backoff_base=0.01, backoff_max=0.05, failure_threshold=50)
        try:
            with live_gateway(settings, router) as live:
                yield live
        finally:
            for server in servers:
                server.stop()


@pytest.fixture(autouse=True)
def clean() -> None:
    for fake in FAKES:
        fake.reset()
    bria.pending_polls = 1


@pytest.fixture
def client(stack: Stack) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=f"{stack.gateway}/v1", api_key=stack.key, max_retries=0) as sdk:
        yield sdk


def fetched(stack: Stack, url: str) -> Image.Image:
    """An image link handed to the client: imagegate's own, never the upstream's."""
    assert url.startswith(stack.gateway), url
    response = httpx.get(url)
    assert response.status_code == 200
    return Image.open(io.BytesIO(response.content))


def charged(stack: Stack, model: str) -> list[float]:
    usage = httpx.get(f"{stack.gateway}/api/usage", params={"model": model},
                      headers={"Authorization": f"Bearer {stack.key}"})  # fmt: skip
    usage.raise_for_status()
    return [row["cost_usd"] for row in usage.json()["data"]]


def test_the_catalogue_lists_the_configured_upstreams(stack: Stack) -> None:
    records = httpx.get(f"{stack.gateway}/api/models").json()["data"]
    codes = {record["id"]: record["provider_code"] for record in records if record["available"]}
    assert codes["bria-fibo"] == "bria" and codes["stable-image-ultra"] == "stability"
    assert codes["seedream-4.5"] == "ark" and codes["grok-imagine-image"] == "xai"
    assert "gpt-image-1" not in codes  # no OpenAI key here


def test_openai_sdk_generates_on_bria(stack: Stack, client: openai.OpenAI) -> None:
    result = client.images.generate(
        model="bria-fibo", prompt="a teapot", size="1248x832", n=2, response_format="url"
    )
    assert result.data is not None and len(result.data) == 2
    assert fetched(stack, str(result.data[0].url)).size == (1248, 832)
    submits = bria.calls_to("submit")
    assert len(submits) == 2  # one image per Bria task: n fans out
    assert all(call.headers["api_token"] == KEYS["bria"] for call in submits)
    assert submits[0].json == {"prompt": "a teapot", "aspect_ratio": "3:2"}


def test_openai_sdk_edit_with_a_mask_reaches_stability_inpaint(client: openai.OpenAI) -> None:
    result = client.images.edit(
        model="stable-image-tools",
        image=("a.png", png((128, 128)), "image/png"),
        mask=("m.png", mask((128, 128), (0, 0, 64, 128)), "image/png"),
        prompt="a window",
    )
    assert result.data is not None and result.data[0].b64_json
    image = Image.open(io.BytesIO(base64.b64decode(result.data[0].b64_json)))
    assert image.size == (128, 128)
    (call,) = stability.calls_to("edit/inpaint")
    assert call.headers["authorization"] == f"Bearer {KEYS['stability']}"
    assert call.files["mask"][0][1] == "image/png" and call.form["prompt"] == "a window"


def test_bria_client_runs_text_to_image_and_gen_fill_on_bria(stack: Stack) -> None:
    auth = {"api_token": stack.key}
    with httpx.Client(base_url=stack.gateway, headers=auth, timeout=30) as http:
        made = http.post("/bria/text-to-image", json={"prompt": "a fox", "aspect_ratio": "16:9"})
        assert made.status_code == 200, made.text
        (url,) = made.json()["result"][0]["urls"]
        assert fetched(stack, url).size == (1360, 768)
        white = Image.new("L", (64, 64), 0)
        white.paste(255, (0, 0, 32, 64))  # Bria's convention: white = edit
        buffer = io.BytesIO()
        white.save(buffer, "PNG")
        photo = "data:image/png;base64," + base64.b64encode(png((64, 64))).decode()
        edit = http.post("/bria/image/edit/gen_fill", json={
            "image": photo, "prompt": "a red door",
            "mask": "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode(),
        })  # fmt: skip
        assert edit.status_code == 202, edit.text
        status = _wait(http, edit.json()["status_url"])
    assert status["status"] == "COMPLETED", status
    assert fetched(stack, status["result"]["image_url"]).size == (64, 64)
    generate, fill = bria.calls_to("submit")
    assert generate.path == "/v2/image/generate" and generate.json["aspect_ratio"] == "16:9"
    assert fill.path == "/v2/image/edit/gen_fill" and fill.json["prompt"] == "a red door"
    sent_mask = Image.open(io.BytesIO(pybase64.b64decode(fill.json["mask"]))).convert("L")
    assert sent_mask.getpixel((8, 8)) == 255 and sent_mask.getpixel((56, 8)) == 0


def test_bria_client_text_to_vector_reaches_bria(stack: Stack) -> None:
    with httpx.Client(base_url=stack.gateway, headers={"api_token": stack.key}, timeout=30) as http:
        made = http.post("/bria/text-to-vector", json={"prompt": "a logo", "aspect_ratio": "1:1"})
    assert made.status_code == 200, made.text
    (url,) = made.json()["result"][0]["urls"]
    assert url.startswith(stack.gateway)
    assert httpx.get(url).content.startswith(b"<svg")
    (call,) = bria.calls_to("vector")
    assert call.headers["api_token"] == KEYS["bria"] and call.json["prompt"] == "a logo"


def _wait(http: httpx.Client, url: str) -> dict[str, Any]:
    deadline = time.monotonic() + 30
    while (body := http.get(url).json())["status"] == "IN_PROGRESS":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    result: dict[str, Any] = body
    return result


def test_google_genai_draws_with_stable_image_ultra(stack: Stack) -> None:
    (image,) = genai_images(stack.gateway, stack.key, "stable-image-ultra", "a dune", "16:9")
    assert image.size == (1360, 768)
    (call,) = stability.calls_to("generate/ultra")
    assert call.form["aspect_ratio"] == "16:9" and call.headers["accept"] == "image/*"
    assert charged(stack, "stable-image-ultra")[-1] == 0.08


def test_a_flux_client_runs_seedream_on_ark(stack: Stack) -> None:
    with httpx.Client(base_url=stack.gateway, headers={"x-key": stack.key}, timeout=30) as http:
        created = http.post("/flux/v1/seedream-4.5", json={"prompt": "koi", "aspect_ratio": "16:9"})
        assert created.status_code == 200, created.text
        polling_url = created.json()["polling_url"]
        deadline = time.monotonic() + 30
        while (done := http.get(polling_url).json())["status"] == "Pending":
            assert time.monotonic() < deadline
            time.sleep(0.05)
    assert done["status"] == "Ready", done
    assert fetched(stack, done["result"]["sample"]).size == (2560, 1440)
    (call,) = ark.calls_to("generate")
    assert call.headers["authorization"] == f"Bearer {KEYS['ark']}"
    assert call.json["size"] == "2560x1440" and call.json["model"] == "doubao-seedream-4-5-251128"
    assert call.json["watermark"] is False and call.json["response_format"] == "b64_json"


def test_a_replicate_client_runs_grok_imagine_on_xai(stack: Stack) -> None:
    headers = {"Authorization": f"Bearer {stack.key}", "Prefer": "wait"}
    with httpx.Client(base_url=stack.gateway, headers=headers, timeout=30) as http:
        answer = http.post(
            "/replicate/v1/models/xai/grok-imagine-image/predictions",
            json={"input": {"prompt": "a comet", "aspect_ratio": "1:1", "num_outputs": 2}},
        )
    assert answer.status_code in (200, 201), answer.text
    prediction = answer.json()
    assert prediction["status"] == "succeeded", prediction
    assert [fetched(stack, url).size for url in prediction["output"]] == [(1024, 1024)] * 2
    (call,) = xai.calls_to("generate")
    assert call.headers["authorization"] == f"Bearer {KEYS['xai']}"
    assert call.json["n"] == 2 and call.json["aspect_ratio"] == "1:1" and "size" not in call.json


def test_openai_sdk_sees_each_upstreams_errors(client: openai.OpenAI) -> None:
    ark.script("generate", Blocked("OutputImageSensitiveContentDetected"))
    with pytest.raises(openai.BadRequestError) as blocked:
        client.images.generate(model="seedream-4.0", prompt="x", size="2048x2048")
    assert blocked.value.code == "content_policy_violation"
    stability.script("generate/core", Fail(500), Fail(500), Fail(500))
    with pytest.raises(openai.InternalServerError) as failed:
        client.images.generate(model="stable-image-core", prompt="x")
    assert failed.value.status_code == 502 and KEYS["stability"] not in str(failed.value.body)
    xai.script("generate", RateLimit(40))
    with pytest.raises(openai.RateLimitError) as limited:
        client.images.generate(model="grok-imagine-image", prompt="x")
    assert limited.value.response.headers["retry-after"] == "40"
    stability.script("generate/sd3", Fail(400, "prompt: too short"))
    with pytest.raises(openai.BadRequestError, match="too short"):
        client.images.generate(model="sd3.5-large", prompt="x")
    assert len(stability.calls_to("generate/sd3")) == 1  # a client error is not retried


def test_providers_check_reaches_each_upstream(stack: Stack) -> None:
    result = CliRunner().invoke(cli, ["providers", "check", "-m", "bria-fibo", "-m",
                                      "stable-image-core", "-m", "seedream-4.0", "-m",
                                      "grok-imagine-image"])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert not any(key in result.output for key in KEYS.values())
    assert [call.path for call in bria.calls] == ["/v2/status/imagegate-providers-check"]
    assert [call.path for call in stability.calls] == ["/v1/user/balance"]
    assert [call.path for call in xai.calls] == ["/v1/models/grok-imagine-image"]
    assert ark.calls[0].headers["authorization"] == f"Bearer {KEYS['ark']}"
