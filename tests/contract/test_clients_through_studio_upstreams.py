"""Clients of each front → a live imagegate → the A1111, ComfyUI, DashScope, Ideogram, Recraft
and Kling fakes, configured only by their environment variables (plus, for ComfyUI's second
workflow, an operator's IMAGEGATE_CONFIG): what each fake received, what the client got."""

from __future__ import annotations

import asyncio
import base64
import io
import socket
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
import sqlalchemy as sa
from PIL import Image

from imagegate.app import create_app
from imagegate.core.routing import RouterSettings
from imagegate.providers.fakes import (
    Blocked,
    FakeA1111,
    FakeComfyUI,
    FakeDashScope,
    FakeIdeogram,
    FakeKling,
    FakeRecraft,
    serve_in_thread,
)
from imagegate.settings import Settings
from imagegate.storage.tables import ledger
from tests.api.images import mask, png
from tests.conftest import ADMIN_KEY, Gateway
from tests.contract.live_kit import Stack, genai_images, live_gateway

SECRET = "kling-secret-key-of-thirty-two-bytes!"
WORKFLOWS = Path(__file__).parent.parent / "providers" / "data" / "comfyui"
a1111, comfy, dash = FakeA1111("op:pw"), FakeComfyUI(pending_polls=0), FakeDashScope("sk-d")
ideo, recraft, kling = FakeIdeogram("i-key"), FakeRecraft("r-key"), FakeKling("ak", SECRET)
FAKES = (a1111, comfy, dash, ideo, recraft, kling)
CONFIG = f"""
[[models]]
id = "comfyui-inpaint"
name = "ComfyUI inpainting (operator's workflow)"
provider = "ComfyUI"
provider_code = "comfyui"
created = 1764806400
features = ["image-edit", "inpainting"]

[models.generate]
sizes = ["512x512", "1024x1024"]
size_range = {{ min_side = 64, max_side = 2048, multiple = 8 }}
default_size = "1024x1024"
max_n = 1
qualities = ["standard"]
default_quality = "standard"
prompt_max_chars = 1000

[models.edit]
mask = true

[models.pricing.per_image]
"standard:1024x1024" = 0.0

[[models.deployments]]
provider = "comfyui"
model = "*"
credentials = {{ base_url = ["COMFYUI_BASE_URL"] }}
base_url_env = "COMFYUI_BASE_URL"
options = {{ workflow = "{WORKFLOWS / "inpaint.json"}", poll_interval = 0.05 }}
"""


def environment(bases: dict[str, str]) -> dict[str, str]:
    return {
        "A1111_BASE_URL": bases["a1111"], "A1111_AUTH": "op:pw",
        "COMFYUI_BASE_URL": bases["comfy"],
        "DASHSCOPE_API_KEY": "sk-d", "DASHSCOPE_BASE_URL": bases["dash"],
        "IDEOGRAM_API_KEY": "i-key", "IDEOGRAM_BASE_URL": bases["ideo"],
        "RECRAFT_API_KEY": "r-key", "RECRAFT_BASE_URL": bases["recraft"],
        "KLING_ACCESS_KEY": "ak", "KLING_SECRET_KEY": SECRET, "KLING_BASE_URL": bases["kling"],
    }  # fmt: skip


@pytest.fixture(scope="module")
def bases() -> Iterator[dict[str, str]]:
    servers = {name: serve_in_thread(fake.app) for name, fake in zip(
        ("a1111", "comfy", "dash", "ideo", "recraft", "kling"), FAKES, strict=True)}  # fmt: skip
    try:
        yield {name: server.base_url for name, server in servers.items()}
    finally:
        for server in servers.values():
            server.stop()


def settings_for(data: Path) -> Settings:
    config = data.parent / "imagegate.toml"
    config.write_text(CONFIG)
    return Settings(
        data_dir=data,
        admin_key=ADMIN_KEY,
        config=config,
        task_poll_seconds=0.05,
        task_lease_seconds=0.5,
    )


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, bases: dict[str, str]) -> Iterator[Stack]:
    with pytest.MonkeyPatch.context() as env:
        for name, value in environment(bases).items():
            env.setenv(name, value)
        settings = settings_for(tmp_path_factory.mktemp("studios") / "data")
        with live_gateway(settings, RouterSettings(backoff_base=0.01, failure_threshold=50)) as s:
            yield s


@pytest.fixture(autouse=True)
def loopback_only(monkeypatch: pytest.MonkeyPatch) -> None:
    for fake in FAKES:
        fake.reset()
    comfy.pending_polls, dash.pending_polls, kling.pending_polls = 0, 0, 0
    connect = socket.socket.connect

    def guarded(sock: socket.socket, address: Any) -> None:
        assert address[0] in ("127.0.0.1", "::1"), f"tried to reach {address}"
        connect(sock, address)

    monkeypatch.setattr(socket.socket, "connect", guarded)


@pytest.fixture
def client(stack: Stack) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=f"{stack.gateway}/v1", api_key=stack.key, max_retries=0) as sdk:
        yield sdk


def sizes(result: Any) -> list[tuple[int, int]]:
    """The images' sizes, from base64 or downloaded from the gateway's own re-hosted URL."""
    found = []
    for item in result.data:
        if item.b64_json is None:
            assert "/files/" in item.url
        data = base64.b64decode(item.b64_json) if item.b64_json else httpx.get(item.url).content
        found.append(Image.open(io.BytesIO(data)).size)
    return found


def test_each_upstream_is_listed_once_configured(stack: Stack) -> None:
    body = httpx.get(f"{stack.gateway}/api/models").json()
    codes = {record["id"]: record.get("provider_code") for record in body["data"]}
    expected = {
        "a1111": "a1111", "comfyui": "comfyui", "comfyui-inpaint": "comfyui",
        "qwen-image": "dashscope", "qwen-image-edit": "dashscope",
        "wan2.5-t2i-preview": "dashscope", "ideogram-v3": "ideogram",
        "ideogram-v3-turbo": "ideogram", "recraft-v3": "recraft", "recraft-v3-svg": "recraft",
        "kling-v2-1": "kling",
    }  # fmt: skip
    assert {model: codes.get(model) for model in expected} == expected


def test_openai_sdk_through_a1111(client: openai.OpenAI) -> None:
    result = client.images.generate(model="a1111", prompt="a castle", size="1216x832", n=2)
    assert sizes(result) == [(1216, 832), (1216, 832)]
    (call,) = a1111.calls_to("generate")
    assert call.headers["authorization"] == "Basic " + base64.b64encode(b"op:pw").decode()
    assert (call.json["width"], call.json["height"], call.json["batch_size"]) == (1216, 832, 2)
    edited = client.images.edit(
        model="a1111", image=("p.png", png((256, 256)), "image/png"), prompt="a door",
        mask=("m.png", mask((256, 256), (0, 0, 128, 128)), "image/png"), size="256x256",
    )  # fmt: skip
    assert sizes(edited) == [(256, 256)]
    body = a1111.calls_to("generate")[1].json
    assert a1111.calls_to("generate")[1].path == "/sdapi/v1/img2img" and body["mask"]
    with pytest.deprecated_call():  # the SDK marks variations deprecated; they still work
        varied = client.images.create_variation(
            model="a1111", image=("p.png", png((256, 256)), "image/png"), size="256x256"
        )
    assert sizes(varied) == [(256, 256)] and "mask" not in a1111.calls_to("generate")[2].json


def test_openai_sdk_through_comfyui_with_two_workflows(client: openai.OpenAI) -> None:
    result = client.images.generate(model="comfyui", prompt="a harbour", size="768x768")
    assert sizes(result) == [(768, 768)]
    graph = comfy.calls_to("submit")[0].json["prompt"]
    assert graph["6"]["inputs"]["text"] == "a harbour" and graph["5"]["inputs"]["width"] == 768
    edited = client.images.edit(
        model="comfyui-inpaint", image=("p.png", png((320, 256)), "image/png"),
        mask=("m.png", mask((320, 256), (0, 0, 64, 64)), "image/png"), prompt="a boat",
        size="1024x1024",
    )  # fmt: skip
    assert edited.data and len(comfy.calls_to("upload")) == 2
    graph = comfy.calls_to("submit")[1].json["prompt"]
    assert graph["6"]["inputs"]["text"] == "a boat" and graph["11"]["class_type"] == "LoadImageMask"


def test_openai_sdk_through_dashscope(client: openai.OpenAI) -> None:
    result = client.images.generate(model="qwen-image", prompt="a tea house", size="1664x928")
    assert sizes(result) == [(1664, 928)]
    (call,) = dash.calls_to("submit")
    assert call.headers["x-dashscope-async"] == "enable"
    assert call.json["parameters"]["size"] == "1664*928"
    wan = client.images.generate(model="wan2.5-t2i-preview", prompt="x", size="1280x720", n=3)
    assert (
        sizes(wan) == [(1280, 720)] * 3 and dash.calls_to("submit")[1].json["parameters"]["n"] == 3
    )
    edited = client.images.edit(
        model="qwen-image-edit", image=("p.png", png((300, 200)), "image/png"), prompt="snow"
    )
    assert edited.data and dash.calls_to("edit")


def test_openai_sdk_through_ideogram(client: openai.OpenAI) -> None:
    result = client.images.generate(
        model="ideogram-v3-turbo", prompt="a poster reading HELLO", size="1312x736", n=2,
        response_format="url",
    )  # fmt: skip
    assert result.data is not None and len(result.data) == 2
    assert sizes(result) == [(1312, 736), (1312, 736)]
    (call,) = ideo.calls_to("generate")
    assert call.form["aspect_ratio"] == "16x9" and call.form["rendering_speed"] == "TURBO"
    ideo.script("edit", Blocked())
    with pytest.raises(openai.BadRequestError) as refused:
        client.images.edit(
            model="ideogram-v3", image=("p.png", png((256, 256)), "image/png"), prompt="x",
            mask=("m.png", mask((256, 256), (0, 0, 64, 64)), "image/png"),
        )  # fmt: skip
    assert refused.value.code == "content_policy_violation"
    assert set(ideo.calls_to("edit")[0].files) == {"image", "mask"}


def test_openai_sdk_through_recraft_raster_and_svg(
    client: openai.OpenAI, stack: Stack, bases: dict[str, str]
) -> None:
    result = client.images.generate(
        model="recraft-v3", prompt="a fox", size="1536x1024", n=2, response_format="url"
    )
    assert result.data is not None
    for item in result.data:
        assert item.url and not item.url.startswith(bases["recraft"])
        image = Image.open(io.BytesIO(httpx.get(item.url).content))
        assert image.size == (1536, 1024) and image.format == "PNG"
    svg = httpx.post(  # Bria's text-to-vector asks for output_format svg
        f"{stack.gateway}/bria/text-to-vector",
        json={"model": "recraft-v3-svg", "prompt": "a fox logo"},
        headers={"api_token": stack.key},
    )
    assert svg.status_code == 200, svg.text
    download = httpx.get(svg.json()["result"][0]["urls"][0])
    assert download.headers["content-type"].startswith("image/svg+xml")
    assert download.content.startswith(b"<svg")
    assert recraft.calls_to("generate")[1].json["style"] == "vector_illustration"


def test_openai_sdk_through_kling_and_ignored_params(client: openai.OpenAI, stack: Stack) -> None:
    result = client.images.generate(model="kling-v2-1", prompt="a koi", size="1360x768", n=2)
    assert sizes(result) == [(1360, 768), (1360, 768)]
    (call,) = kling.calls_to("submit")
    assert call.headers["authorization"].startswith("Bearer ey") and call.json["n"] == 2
    raw = httpx.post(
        f"{stack.gateway}/v1/images/generations",
        json={"model": "kling-v2-1", "prompt": "x", "size": "1024x1024", "moderation": "low"},
        headers={"Authorization": f"Bearer {stack.key}"},
    )
    assert raw.status_code == 200 and raw.headers["x-imagegate-ignored-params"] == "moderation"


def test_flux_replicate_and_bria_fronts_reach_the_new_upstreams(stack: Stack) -> None:
    auth = {"Authorization": f"Bearer {stack.key}"}
    with httpx.Client(base_url=stack.gateway, headers=auth, timeout=30) as http:
        flux_body = {"prompt": "a pagoda", "width": 1024, "height": 1024}
        created = http.post("/flux/v1/wan2.5-t2i-preview", json=flux_body)
        assert created.status_code == 200, created.text
        created = created.json()
        done = wait(lambda: http.get(created["polling_url"]).json(), "status", "Ready")
        image = Image.open(io.BytesIO(httpx.get(done["result"]["sample"]).content))
        assert image.size == (1024, 1024)
        assert dash.calls_to("submit")[0].json["parameters"]["size"] == "1024*1024"
        prediction = http.post(
            "/replicate/v1/models/kling/kling-v2-1/predictions",
            json={"input": {"prompt": "a crane", "aspect_ratio": "16:9"}},
            headers={"Prefer": "wait"},
        ).json()
        assert prediction["status"] == "succeeded", prediction
        assert kling.calls_to("submit")[0].json["aspect_ratio"] == "16:9"
        made = http.post(
            "/bria/text-to-image", headers={"api_token": stack.key},
            json={"prompt": "a tram", "model": "ideogram-v3", "aspect_ratio": "16:9"},
        )  # fmt: skip
        assert made.status_code == 200, made.text
        assert ideo.calls_to("generate")[0].form["aspect_ratio"] == "16x9"
        cut = http.post(
            "/bria/image/edit/remove_background", headers={"api_token": stack.key},
            json={"image": "data:image/png;base64," + base64.b64encode(png((256, 256))).decode(),
                  "model": "recraft-v3"},
        )  # fmt: skip
        assert cut.status_code == 202, cut.text
        status_url = cut.json()["status_url"]
        done = wait(lambda: http.get(status_url, headers={"api_token": stack.key}).json(),
                    "status", "COMPLETED")  # fmt: skip
        assert done["result"]["image_url"]
        assert "file" in recraft.calls_to("remove_background")[0].files


def test_google_genai_draws_with_ideogram(stack: Stack) -> None:
    (image,) = genai_images(stack.gateway, stack.key, "ideogram-v3", "a sign: OPEN", "16:9")
    assert image.size == (1312, 736)
    assert ideo.calls_to("generate")[0].form["aspect_ratio"] == "16x9"


def wait(fetch: Any, key: str, value: str) -> Any:
    import time

    for _ in range(300):
        body = fetch()
        if body[key] == value:
            return body
        time.sleep(0.05)
    raise AssertionError(f"never {value}: {body}")


# -- across a restart -------------------------------------------------------------------------


@asynccontextmanager
async def serving(settings: Settings, key: str | None = None) -> AsyncIterator[Gateway]:
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        if key is None:
            _, key = await app.state.services.keys.create(name="restart")
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway.test") as client:
            yield Gateway(app, client, key)


@pytest.mark.parametrize(
    ("model", "fake"), [("qwen-image", dash), ("kling-v2-1", kling), ("comfyui", comfy)]
)
async def test_an_async_upstream_task_survives_a_gateway_restart(
    tmp_path: Path,
    bases: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    model: str,
    fake: FakeDashScope | FakeKling | FakeComfyUI,
) -> None:
    """The gateway stops while the upstream is still drawing; the next start finishes the task
    once, stores one result and charges once."""
    for name, value in environment(bases).items():
        monkeypatch.setenv(name, value)
    settings = settings_for(tmp_path / "data")
    fake.pending_polls = 10_000
    async with serving(settings) as first:
        created = await first.client.post(
            f"/flux/v1/{model}", json={"prompt": "a lantern", "aspect_ratio": "1:1"},
            headers=first.auth,
        )  # fmt: skip
        assert created.status_code == 200, created.text
        task_id = created.json()["id"]
        while not fake.calls_to("poll"):
            await asyncio.sleep(0.02)
    for job in fake.jobs.values():
        job.polls_left = 0
    fake.pending_polls = 0
    async with serving(settings, first.key) as second:
        for _ in range(400):
            body = (
                await second.client.get("/flux/v1/get_result", params={"id": task_id},
                                        headers=second.auth)
            ).json()  # fmt: skip
            if body["status"] != "Pending":
                break
            await asyncio.sleep(0.05)
        assert body["status"] == "Ready", body
        sample = await second.client.get(body["result"]["sample"])
        assert Image.open(io.BytesIO(sample.content)).size[0] > 0
        async with second.services.engine.connect() as conn:
            rows = await conn.execute(
                sa.select(ledger.c.amount_usd).where(ledger.c.kind == "charge")
            )
            charged = [-Decimal(str(amount)) for (amount,) in rows]
    assert len(charged) == 1
    # The upstream job is kept with the task: the second process polls it, never submits again.
    assert len(fake.calls_to("submit")) == 1


async def test_midjourney_grids_drawn_by_kling(
    tmp_path: Path, bases: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """With ``mj_model`` set to an upstream that batches, an imagine is one upstream call of
    four images, put together as the grid."""
    from tests.api.mj_kit import image_of, imagine

    for name, value in environment(bases).items():
        monkeypatch.setenv(name, value)
    settings = settings_for(tmp_path / "data").model_copy(update={"mj_model": "kling-v2-1"})
    async with serving(settings) as gw:
        task = await imagine(gw.client, "a red fox --ar 16:9", gw.auth)
        grid = await image_of(gw.client, task)
    (call,) = kling.calls_to("submit")
    assert call.json["n"] == 4 and call.json["aspect_ratio"] == "16:9"
    assert grid.size == (2 * 1360, 2 * 768)
