"""Bria, Stability, Ark (Seedream) and xAI adapters against their fakes: what each upstream
receives (auth, translated fields, masks), what comes back, and each one's error shapes."""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

import pybase64
import pytest
from PIL import Image

from imagegate.core.requests import ImageResult, InputImage
from imagegate.core.upstream import UpstreamJob
from imagegate.errors import (
    ContentPolicyViolation,
    InvalidRequest,
    RateLimited,
    UpstreamError,
    UpstreamRejected,
)
from imagegate.providers._http import parse
from imagegate.providers.ark import ArkProvider
from imagegate.providers.bria import BriaProvider
from imagegate.providers.fakes import (
    Blocked,
    Fail,
    FakeArk,
    FakeBria,
    FakeStability,
    FakeXAI,
    RateLimit,
)
from imagegate.providers.fakes.images import image_bytes
from imagegate.providers.stability import StabilityProvider
from imagegate.providers.upstream_client import UpstreamClient
from imagegate.providers.xai import XAIProvider
from tests.providers.upstream_kit import context, input_png, request, run_task, running

bria, stability = FakeBria("bria-token"), FakeStability("sk-stab")
ark, xai = FakeArk("ark-key"), FakeXAI("xai-key")


@pytest.fixture(scope="module")
def bases() -> Iterator[dict[str, str]]:
    with running(bria) as b, running(stability) as s, running(ark) as a, running(xai) as x:
        yield {"bria": b, "stability": s, "ark": a, "xai": x}


@pytest.fixture(autouse=True)
def clean() -> None:
    for fake in (bria, stability, ark, xai):
        fake.reset()
    bria.pending_polls, stability.pending_polls = 1, 1


def size_of(result: ImageResult, index: int = 0) -> tuple[int, int]:
    return Image.open(io.BytesIO(result.images[index].data)).size


def domain_mask(width: int, height: int, box: tuple[int, int, int, int]) -> InputImage:
    """An RGBA mask whose alpha is 0 inside ``box`` (the area to change)."""
    mask = Image.new("RGBA", (width, height), (0, 0, 0, 255))
    mask.paste((0, 0, 0, 0), box)
    buffer = io.BytesIO()
    mask.save(buffer, "PNG")
    return InputImage(buffer.getvalue(), "png", width, height, True, "1" * 64)


def white_fraction(png: bytes) -> float:
    grey = Image.open(io.BytesIO(png)).convert("L")
    return grey.histogram()[255] / (grey.width * grey.height)


# -- Bria -------------------------------------------------------------------------------------


async def test_bria_generates_with_an_aspect_ratio_and_polls_the_status(
    http: UpstreamClient, bases: dict[str, str]
) -> None:
    ctx = context(http, bases["bria"], "fibo", key="bria-token", credential="api_token")
    result = await run_task(
        BriaProvider(), request(width=1536, height=1024, extras={"seed": 7}), ctx
    )
    (submit,) = bria.calls_to("submit")
    assert submit.path == "/v2/image/generate" and submit.headers["api_token"] == "bria-token"
    assert submit.json == {"prompt": request().prompt, "aspect_ratio": "3:2", "seed": 7}
    assert [call.path for call in bria.calls_to("poll")] == [
        f"/v2/status/{next(iter(bria.jobs))}"
    ] * 2
    assert size_of(result) == (1248, 832)


async def test_bria_gen_fill_sends_a_white_is_edit_mask(
    http: UpstreamClient, bases: dict[str, str]
) -> None:
    ctx = context(http, bases["bria"], "fibo", key="bria-token", credential="api_token")
    req = request(operation="edit", images=(input_png(64, 64),),
                  mask=domain_mask(64, 64, (0, 0, 32, 64)), prompt="a red door")  # fmt: skip
    result = await run_task(BriaProvider(), req, ctx)
    body = bria.calls_to("submit")[0].json
    assert bria.calls_to("submit")[0].path == "/v2/image/edit/gen_fill"
    assert body["prompt"] == "a red door" and body["mask_type"] == "manual"
    assert white_fraction(pybase64.b64decode(body["mask"])) == pytest.approx(0.5)
    assert size_of(result) == (64, 64)


async def test_bria_expand_and_increase_resolution(
    http: UpstreamClient, bases: dict[str, str]
) -> None:
    ctx = context(http, bases["bria"], "fibo", key="bria-token", credential="api_token")
    expand = request(operation="outpaint", images=(input_png(64, 64),), padding=(16, 0, 16, 8))
    result = await run_task(BriaProvider(), expand, ctx)
    body = bria.calls_to("submit")[0].json
    assert body["canvas_size"] == [96, 72] and body["original_image_location"] == [16, 0]
    assert size_of(result) == (96, 72)
    upscale = request(operation="upscale", images=(input_png(64, 64),), scale=4)
    result = await run_task(BriaProvider(), upscale, ctx)
    assert bria.calls_to("submit")[1].json["scale"] == 4 and size_of(result) == (256, 256)


async def test_bria_vectors_go_to_the_v1_route_in_one_call(
    http: UpstreamClient, bases: dict[str, str]
) -> None:
    ctx = context(http, bases["bria"], "fibo", key="bria-token", credential="api_token")
    req = request(output_format="svg", n=2, width=1024, height=576)
    adapter = BriaProvider()
    assert adapter.images_per_call(req, ctx) == 4
    result = await adapter.submit(req, ctx)
    assert isinstance(result, ImageResult) and len(result.images) == 2
    assert all(image.data.startswith(b"<svg") for image in result.images)
    (call,) = bria.calls_to("vector")
    assert call.path == "/v1/text-to-vector/base/2.3"
    assert call.json == {"prompt": req.prompt, "num_results": 2, "sync": True,
                         "aspect_ratio": "16:9"}  # fmt: skip


async def test_bria_errors_and_moderation(http: UpstreamClient, bases: dict[str, str]) -> None:
    ctx = context(http, bases["bria"], "fibo", key="bria-token", credential="api_token")
    bria.script("submit", Blocked())
    with pytest.raises(ContentPolicyViolation):
        await run_task(BriaProvider(), request(), ctx)
    bria.script("submit", Fail(422, "prompt is too long"))
    with pytest.raises(InvalidRequest, match="too long"):
        await run_task(BriaProvider(), request(), ctx)
    bria.script("submit", RateLimit(3))
    with pytest.raises(RateLimited) as limited:
        await run_task(BriaProvider(), request(), ctx)
    assert limited.value.retry_after == 3
    bria.script("submit", Fail(503))
    with pytest.raises(UpstreamError):
        await run_task(BriaProvider(), request(), ctx)
    wrong = context(http, bases["bria"], "fibo", key="nope", credential="api_token")
    with pytest.raises(UpstreamRejected):
        await run_task(BriaProvider(), request(), wrong)
    assert await BriaProvider().check(ctx) == "token accepted"
    with pytest.raises(UpstreamRejected):
        await BriaProvider().check(wrong)


async def test_bria_never_sends_the_token_to_a_foreign_status_url(
    http: UpstreamClient, bases: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from imagegate.providers import bria as module

    original = parse

    def foreign(model: type[Any], body: bytes, provider: str) -> Any:
        parsed = original(model, body, provider)
        if getattr(parsed, "status_url", None):
            parsed = parsed.model_copy(update={"status_url": "https://evil.example/v2/status/1"})
        return parsed

    monkeypatch.setattr(module, "parse", foreign)
    ctx = context(http, bases["bria"], "fibo", key="bria-token", credential="api_token")
    job = await BriaProvider().submit(request(), ctx)
    assert isinstance(job, UpstreamJob)
    assert job.handles["status_url"] == f"{bases['bria']}/v2/status/{job.id}"


# -- Stability --------------------------------------------------------------------------------


async def test_stability_generates_multipart_with_an_aspect_ratio(
    http: UpstreamClient, bases: dict[str, str]
) -> None:
    ctx = context(http, bases["stability"], "sd3.5-large", key="sk-stab")
    req = request(width=1344, height=768, output_format="jpeg", extras={"seed": 9})
    result = await StabilityProvider().submit(req, ctx)
    assert isinstance(result, ImageResult) and size_of(result) == (1360, 768)
    (call,) = stability.calls_to("generate/sd3")
    assert call.headers["authorization"] == "Bearer sk-stab" and call.headers["accept"] == "image/*"
    assert call.headers["content-type"].startswith("multipart/form-data")
    assert call.form == {"prompt": req.prompt, "model": "sd3.5-large", "aspect_ratio": "16:9",
                         "seed": "9", "output_format": "jpeg"}  # fmt: skip


async def test_stability_inpaint_outpaint_and_remove_background(
    http: UpstreamClient, bases: dict[str, str]
) -> None:
    ctx = context(http, bases["stability"], "stable-image-core", key="sk-stab")
    adapter = StabilityProvider()
    inpaint = request(operation="edit", images=(input_png(64, 64),),
                      mask=domain_mask(64, 64, (0, 0, 64, 16)))  # fmt: skip
    result = await adapter.submit(inpaint, ctx)
    assert isinstance(result, ImageResult) and size_of(result) == (64, 64)
    (call,) = stability.calls_to("edit/inpaint")
    assert set(call.files) == {"image", "mask"} and call.form["prompt"] == inpaint.prompt
    outpaint = request(operation="outpaint", images=(input_png(64, 64),), padding=(8, 4, 8, 0))
    result = await adapter.submit(outpaint, ctx)
    assert isinstance(result, ImageResult) and size_of(result) == (80, 68)
    (call,) = stability.calls_to("edit/outpaint")
    assert (call.form["left"], call.form["right"], call.form["up"], call.form["down"]) == (
        "8", "8", "4", "0",
    )  # fmt: skip
    removal = request(operation="remove_background", images=(input_png(),), output_format="jpeg")
    await adapter.submit(removal, ctx)
    assert stability.calls_to("edit/remove-background")[0].form["output_format"] == "png"
    fast = await adapter.submit(request(operation="upscale", images=(input_png(16, 16),)), ctx)
    assert isinstance(fast, ImageResult) and size_of(fast) == (64, 64)
    with pytest.raises(InvalidRequest, match="no input image"):
        await adapter.submit(request(operation="edit", images=(input_png(),)), ctx)


async def test_stability_creative_upscale_is_a_result_to_poll(
    http: UpstreamClient, bases: dict[str, str]
) -> None:
    ctx = context(http, bases["stability"], "stable-image-core", key="sk-stab",
                  options={"creative_upscale": True, "poll_interval": 0.01})  # fmt: skip
    req = request(operation="upscale", images=(input_png(64, 64),), strength=0.3, scale=2)
    job = await StabilityProvider().submit(req, ctx)
    assert isinstance(job, UpstreamJob)
    assert (await StabilityProvider().poll(job, ctx)).result is None
    done = await StabilityProvider().poll(job, ctx)
    assert done.result is not None and size_of(done.result) == (128, 128)
    assert [c.path for c in stability.calls_to("result")] == [f"/v2beta/results/{job.id}"] * 2
    assert stability.calls_to("upscale/creative")[0].form["creativity"] == "0.3"
    with pytest.raises(UpstreamError, match="no longer"):
        await StabilityProvider().poll(UpstreamJob("f" * 64), ctx)


async def test_stability_errors_and_content_moderation(
    http: UpstreamClient, bases: dict[str, str]
) -> None:
    ctx = context(http, bases["stability"], "stable-image-core", key="sk-stab")
    adapter = StabilityProvider()
    stability.script("generate/core", Blocked())
    with pytest.raises(ContentPolicyViolation) as blocked:
        await adapter.submit(request(), ctx)
    assert blocked.value.stage == "prompt"
    stability.script("generate/core", Blocked("CONTENT_FILTERED"))
    with pytest.raises(ContentPolicyViolation) as filtered:
        await adapter.submit(request(), ctx)
    assert filtered.value.stage == "output"
    stability.script("generate/core", Fail(400, "prompt: cannot be empty"))
    with pytest.raises(InvalidRequest, match="cannot be empty"):
        await adapter.submit(request(), ctx)
    stability.script("generate/core", RateLimit(1))
    with pytest.raises(RateLimited):
        await adapter.submit(request(), ctx)
    stability.script("generate/core", Fail(500))
    with pytest.raises(UpstreamError):
        await adapter.submit(request(), ctx)
    stability.script("generate/core", Fail(402, "insufficient credits"))
    with pytest.raises(UpstreamRejected):
        await adapter.submit(request(), ctx)
    wrong = context(http, bases["stability"], "stable-image-core", key="sk-wrong")
    with pytest.raises(UpstreamRejected):
        await adapter.submit(request(), wrong)
    assert await adapter.check(ctx) == "key accepted"


# -- Ark (Seedream) ---------------------------------------------------------------------------


async def test_ark_group_generation_and_references(
    http: UpstreamClient, bases: dict[str, str]
) -> None:
    ctx = context(http, bases["ark"], "doubao-seedream-4-0-250828", key="ark-key")
    adapter = ArkProvider()
    req = request(n=3, width=2048, height=2048, images=(input_png(), input_png(colour=1)))
    assert adapter.images_per_call(req, ctx) == 13
    result = await adapter.generate(req, ctx)
    assert len(result.images) == 3 and size_of(result, 2) == (2048, 2048)
    (call,) = ark.calls_to("generate")
    body = call.json
    assert call.headers["authorization"] == "Bearer ark-key"
    assert body["sequential_image_generation"] == "auto" and body["watermark"] is False
    assert body["sequential_image_generation_options"] == {"max_images": 3}
    assert body["size"] == "2048x2048" and body["response_format"] == "b64_json"
    assert [ref[:22] for ref in body["image"]] == ["data:image/png;base64,"] * 2
    assert result.usage is not None and result.usage.output_image_tokens == 3 * 16384


async def test_ark_seededit_takes_one_image_and_a_seed(
    http: UpstreamClient, bases: dict[str, str]
) -> None:
    ctx = context(http, bases["ark"], "doubao-seededit-3-0-i2i-250628", key="ark-key")
    req = request(operation="edit", images=(input_png(),), extras={"seed": 5}, width=1024,
                  height=1024)  # fmt: skip
    await ArkProvider().generate(req, ctx)
    body = ark.calls_to("generate")[0].json
    assert isinstance(body["image"], str) and body["seed"] == 5 and body["size"] == "adaptive"
    assert "sequential_image_generation" not in body


async def test_ark_errors(http: UpstreamClient, bases: dict[str, str]) -> None:
    ctx = context(http, bases["ark"], "doubao-seedream-4-0-250828", key="ark-key")
    adapter = ArkProvider()
    ark.script("generate", Blocked("InputTextSensitiveContentDetected"))
    with pytest.raises(ContentPolicyViolation) as blocked:
        await adapter.generate(request(), ctx)
    assert blocked.value.stage == "prompt"
    ark.script("generate", Fail(400, "size is invalid"))
    with pytest.raises(InvalidRequest, match="size is invalid"):
        await adapter.generate(request(), ctx)
    ark.script("generate", RateLimit(1))
    with pytest.raises(RateLimited):
        await adapter.generate(request(), ctx)
    ark.script("generate", Fail(500))
    with pytest.raises(UpstreamError):
        await adapter.generate(request(), ctx)
    wrong = context(http, bases["ark"], "doubao-seedream-4-0-250828", key="nope")
    with pytest.raises(UpstreamRejected):
        await adapter.generate(request(), wrong)
    assert "key accepted" in await adapter.check(ctx)
    with pytest.raises(UpstreamRejected):
        await adapter.check(wrong)


# -- xAI --------------------------------------------------------------------------------------


async def test_xai_sends_no_size_and_imagine_gets_an_aspect_ratio(
    http: UpstreamClient, bases: dict[str, str]
) -> None:
    ctx = context(http, f"{bases['xai']}/v1", "grok-imagine-image", key="xai-key")
    result = await XAIProvider().generate(request(n=2, width=1536, height=1024), ctx)
    assert len(result.images) == 2 and size_of(result) == (1248, 832)
    (call,) = xai.calls_to("generate")
    assert call.headers["authorization"] == "Bearer xai-key"
    assert call.json == {"model": "grok-imagine-image", "prompt": request().prompt, "n": 2,
                         "response_format": "b64_json", "aspect_ratio": "3:2",
                         "resolution": "1k"}  # fmt: skip
    old = context(http, f"{bases['xai']}/v1", "grok-2-image-1212", key="xai-key")
    await XAIProvider().generate(request(), old)
    assert "aspect_ratio" not in xai.calls_to("generate")[1].json


async def test_xai_errors(http: UpstreamClient, bases: dict[str, str]) -> None:
    ctx = context(http, f"{bases['xai']}/v1", "grok-imagine-image", key="xai-key")
    adapter = XAIProvider()
    xai.script("generate", Blocked())
    with pytest.raises(ContentPolicyViolation):
        await adapter.generate(request(), ctx)
    xai.script("generate", Fail(422, "prompt must not be empty"))
    with pytest.raises(InvalidRequest, match="must not be empty"):
        await adapter.generate(request(), ctx)
    xai.script("generate", RateLimit(2))
    with pytest.raises(RateLimited) as limited:
        await adapter.generate(request(), ctx)
    assert limited.value.retry_after == 2
    xai.script("generate", Fail(500, "boom"))
    with pytest.raises(UpstreamError):
        await adapter.generate(request(), ctx)
    wrong = context(http, f"{bases['xai']}/v1", "grok-imagine-image", key="xai-wrong")
    with pytest.raises(UpstreamRejected):
        await adapter.generate(request(), wrong)
    assert "credentials accepted" in await adapter.check(ctx)


def test_fakes_make_real_images() -> None:
    assert Image.open(io.BytesIO(image_bytes(8, 8, "jpeg"))).size == (8, 8)


def test_each_adapter_reports_what_it_cannot_send(http: UpstreamClient) -> None:
    ctx = context(http, "http://127.0.0.1:9", "doubao-seedream-4-0-250828", key="k")
    styled = request(style="vivid", moderation="low", extras={"seed": 1})
    assert ArkProvider().dropped_params(styled, ctx) == ["moderation", "seed", "style"]
    assert BriaProvider().dropped_params(styled, ctx) == ["moderation", "style"]
    assert StabilityProvider().dropped_params(styled, ctx) == ["moderation", "style"]
    xai_ctx = context(http, "http://127.0.0.1:9/v1", "grok-imagine-image", key="k")
    assert XAIProvider().dropped_params(styled, xai_ctx) == ["moderation", "style"]
