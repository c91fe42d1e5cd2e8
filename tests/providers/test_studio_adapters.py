"""A1111, ComfyUI, DashScope, Ideogram, Recraft and Kling adapters against their fakes: what
each upstream receives, what comes back, and how each provider's errors are mapped."""

from __future__ import annotations

import base64
import io
from collections.abc import Iterator
from pathlib import Path

import jwt
import pytest
from PIL import Image

from imagegate.core.requests import ImageResult, InputImage
from imagegate.errors import (
    ContentPolicyViolation,
    InvalidRequest,
    RateLimited,
    UpstreamError,
    UpstreamRejected,
)
from imagegate.providers._masks import black_and_white
from imagegate.providers.a1111 import A1111Provider
from imagegate.providers.comfyui import ComfyUIProvider
from imagegate.providers.dashscope import DashScopeProvider
from imagegate.providers.fakes import (
    Blocked,
    Fail,
    FakeA1111,
    FakeComfyUI,
    FakeDashScope,
    FakeIdeogram,
    FakeKling,
    FakeRecraft,
    RateLimit,
)
from imagegate.providers.ideogram import IdeogramProvider
from imagegate.providers.kling import KlingProvider
from imagegate.providers.recraft import RecraftProvider
from imagegate.providers.upstream_client import UpstreamClient
from tests.api.images import mask as make_mask
from tests.providers.upstream_kit import context, input_png, request, run_task, running

SECRET = "kling-secret-key-of-thirty-two-bytes!"
WORKFLOWS = Path(__file__).parent / "data" / "comfyui"
a1111, comfy, dash = FakeA1111("user:pass"), FakeComfyUI(), FakeDashScope("sk-dash")
ideo, recraft, kling = FakeIdeogram("ideo-key"), FakeRecraft("rc-key"), FakeKling("ak-1", SECRET)
FAKES = (a1111, comfy, dash, ideo, recraft, kling)


@pytest.fixture(scope="module")
def bases() -> Iterator[dict[str, str]]:
    with (
        running(a1111) as a, running(comfy) as c, running(dash) as d, running(ideo) as i,
        running(recraft) as r, running(kling) as k,
    ):  # fmt: skip
        yield {"a1111": a, "comfy": c, "dash": d, "ideo": i, "recraft": r, "kling": k}


@pytest.fixture(autouse=True)
def clean() -> None:
    for fake in FAKES:
        fake.reset()
    comfy.pending_polls = dash.pending_polls = kling.pending_polls = 1


def size_of(result: ImageResult, index: int = 0) -> tuple[int, int]:
    return Image.open(io.BytesIO(result.images[index].data)).size


def domain_mask(width: int = 64, height: int = 64) -> InputImage:
    data = make_mask((width, height), (0, 0, width // 2, height // 2))
    return InputImage(data, "png", width, height, True, "1" * 64)


# -- AUTOMATIC1111 ---------------------------------------------------------------------------


async def test_a1111_txt2img_with_basic_auth_and_the_checkpoint(
    http: UpstreamClient, bases: dict[str, str]
) -> None:
    ctx = context(http, bases["a1111"], "sd_xl_base_1.0", key="user:pass", credential="auth")
    req = request(n=2, width=1000, height=750, extras={"seed": 7, "negative_prompt": "blurry"})
    result = await A1111Provider().generate(req, ctx)
    (call,) = a1111.calls_to("generate")
    assert call.path == "/sdapi/v1/txt2img"
    assert call.headers["authorization"] == "Basic " + base64.b64encode(b"user:pass").decode()
    body = call.json
    assert (body["width"], body["height"], body["batch_size"], body["seed"]) == (1000, 752, 2, 7)
    assert body["negative_prompt"] == "blurry"
    assert body["override_settings"] == {"sd_model_checkpoint": "sd_xl_base_1.0"}
    assert len(result.images) == 2 and size_of(result) == (1000, 752)


async def test_a1111_inpaints_with_a_white_means_change_mask(
    http: UpstreamClient, bases: dict[str, str]
) -> None:
    ctx = context(http, bases["a1111"], "*", key="user:pass", credential="auth")
    req = request(operation="edit", images=(input_png(),), mask=domain_mask(), width=64, height=64)
    await A1111Provider().generate(req, ctx)
    body = a1111.calls_to("generate")[0].json
    assert a1111.calls_to("generate")[0].path == "/sdapi/v1/img2img"
    assert "override_settings" not in body and body["denoising_strength"] == 0.75
    sent = Image.open(io.BytesIO(base64.b64decode(body["mask"]))).convert("L")
    assert sent.getpixel((5, 5)) == 255 and sent.getpixel((60, 60)) == 0
    assert body["init_images"] and body["inpainting_mask_invert"] == 0


async def test_a1111_variation_and_errors(http: UpstreamClient, bases: dict[str, str]) -> None:
    ctx = context(http, bases["a1111"], "*", key="user:pass", credential="auth")
    req = request(operation="variation", images=(input_png(),), strength=0.3)
    await A1111Provider().generate(req, ctx)
    assert a1111.calls_to("generate")[0].json["denoising_strength"] == 0.3
    a1111.script("generate", Fail(422, "width must be divisible by 8"), Fail(500, "CUDA OOM"))
    with pytest.raises(InvalidRequest, match="divisible by 8"):
        await A1111Provider().generate(request(), ctx)
    with pytest.raises(UpstreamError, match="CUDA OOM"):
        await A1111Provider().generate(request(), ctx)
    bad = context(http, bases["a1111"], "*", key="user:wrong", credential="auth")
    with pytest.raises(UpstreamRejected):
        await A1111Provider().generate(request(), bad)
    assert await A1111Provider().check(ctx) == "1 checkpoints"
    with pytest.raises(UpstreamRejected, match="no checkpoint"):
        await A1111Provider().check(
            context(http, bases["a1111"], "missing", key="user:pass", credential="auth")
        )


# -- ComfyUI ---------------------------------------------------------------------------------


async def test_comfyui_txt2img_workflow_fills_the_declared_nodes(
    http: UpstreamClient, bases: dict[str, str]
) -> None:
    options = {
        "workflow": str(WORKFLOWS / "txt2img.json"),
        "inputs": {"prompt": "6.text", "negative_prompt": "7.text", "seed": "3.seed",
                   "width": "5.width", "height": "5.height", "batch_size": "5.batch_size",
                   "checkpoint": "4.ckpt_name"},
        "poll_interval": 0.01,
    }  # fmt: skip
    ctx = context(http, bases["comfy"], "dreamshaper_8.safetensors", key="", options=options)
    adapter = ComfyUIProvider()
    assert adapter.images_per_call(request(), ctx) == 8
    req = request(n=2, width=768, height=512, extras={"seed": 99, "negative_prompt": "text"})
    result = await run_task(adapter, req, ctx)
    graph = comfy.calls_to("submit")[0].json["prompt"]
    assert graph["6"]["inputs"]["text"] == req.prompt and graph["7"]["inputs"]["text"] == "text"
    assert graph["3"]["inputs"]["seed"] == 99
    assert graph["5"]["inputs"] == {"width": 768, "height": 512, "batch_size": 2}
    assert graph["4"]["inputs"]["ckpt_name"] == "dreamshaper_8.safetensors"
    assert len(comfy.calls_to("poll")) == 2 and len(comfy.calls_to("view")) == 2
    assert len(result.images) == 2 and size_of(result) == (768, 512)


async def test_comfyui_inpaint_workflow_uploads_the_image_and_mask(
    http: UpstreamClient, bases: dict[str, str]
) -> None:
    options = {"workflow": str(WORKFLOWS / "inpaint.json"), "poll_interval": 0.01}
    ctx = context(http, bases["comfy"], "*", key="", options=options)
    req = request(operation="edit", images=(input_png(96, 80),), mask=domain_mask(96, 80),
                  width=96, height=80, strength=0.6)  # fmt: skip
    result = await run_task(ComfyUIProvider(), req, ctx)
    uploads = comfy.calls_to("upload")
    assert [c.form["type"] for c in uploads] == ["input", "input"]
    graph = comfy.calls_to("submit")[0].json["prompt"]
    image_name, mask_name = graph["10"]["inputs"]["image"], graph["11"]["inputs"]["image"]
    assert image_name.endswith("image.png") and mask_name.endswith("mask.png")
    assert graph["3"]["inputs"]["denoise"] == 0.6
    assert graph["4"]["inputs"]["ckpt_name"] == "sd-v1-5-inpainting.ckpt"  # "*" keeps it
    mask = Image.open(io.BytesIO(comfy.uploads[mask_name])).getchannel("A")
    assert mask.getpixel((1, 1)) == 0 and mask.getpixel((90, 70)) == 255
    assert size_of(result) == (96, 80)
    with pytest.raises(InvalidRequest, match="needs an input image"):
        await ComfyUIProvider().submit(request(), ctx)


async def test_comfyui_without_a_mask_node_puts_the_mask_into_the_images_alpha(
    http: UpstreamClient, bases: dict[str, str]
) -> None:
    options = {"workflow": str(WORKFLOWS / "inpaint_alpha.json"), "poll_interval": 0.01}
    ctx = context(http, bases["comfy"], "*", key="", options=options)
    req = request(operation="edit", images=(input_png(64, 64),), mask=domain_mask(), width=64,
                  height=64)  # fmt: skip
    await run_task(ComfyUIProvider(), req, ctx)
    (upload,) = comfy.calls_to("upload")
    sent = Image.open(io.BytesIO(comfy.uploads[upload.files["image"][0][0]]))
    assert sent.mode == "RGBA"
    alpha = sent.getchannel("A")
    assert alpha.getpixel((5, 5)) == 0 and alpha.getpixel((60, 60)) == 255


async def test_comfyui_failures_and_check(http: UpstreamClient, bases: dict[str, str]) -> None:
    ctx = context(http, bases["comfy"], "*", key="", options={"poll_interval": 0.01})
    comfy.script("submit", Blocked())
    with pytest.raises(UpstreamError, match="CUDA out of memory"):
        await run_task(ComfyUIProvider(), request(), ctx)
    bad = {"workflow": str(WORKFLOWS / "inpaint.json"), "inputs": {"image": "4.ckpt_name"}}
    ctx_bad = context(http, bases["comfy"], "*", key="", options=bad)
    req = request(operation="edit", images=(input_png(),))
    with pytest.raises(InvalidRequest, match="Invalid image file"):
        await run_task(ComfyUIProvider(), req, ctx_bad)
    comfy.script("submit", Fail(500, "Internal Server Error"))
    with pytest.raises(UpstreamError):
        await run_task(ComfyUIProvider(), request(), ctx)
    job = await ComfyUIProvider().submit(request(), ctx)
    await ComfyUIProvider().cancel(job, ctx)
    assert comfy.deleted == [job.id]
    assert (await ComfyUIProvider().check(ctx)).startswith("comfyui 0.3.66")


# -- DashScope -------------------------------------------------------------------------------


async def test_dashscope_qwen_image_is_an_async_task(
    http: UpstreamClient, bases: dict[str, str]
) -> None:
    ctx = context(http, bases["dash"], "qwen-image", key="sk-dash", options={"poll_interval": 0.01})
    req = request(width=1792, height=1024, extras={"seed": 3, "negative_prompt": "fog"})
    result = await run_task(DashScopeProvider(), req, ctx)
    (call,) = dash.calls_to("submit")
    assert call.headers["authorization"] == "Bearer sk-dash"
    assert call.headers["x-dashscope-async"] == "enable"
    assert call.json == {
        "model": "qwen-image",
        "input": {"prompt": req.prompt, "negative_prompt": "fog"},
        "parameters": {"watermark": False, "seed": 3, "size": "1664*928", "n": 1},
    }
    assert next(c.path for c in dash.calls_to("poll")).startswith("/api/v1/tasks/")
    assert size_of(result) == (1664, 928)


async def test_dashscope_wan_batches_and_qwen_edit_answers_at_once(
    http: UpstreamClient, bases: dict[str, str]
) -> None:
    ctx = context(http, bases["dash"], "wan2.5-t2i-preview", key="sk-dash",
                  options={"poll_interval": 0.01})  # fmt: skip
    assert DashScopeProvider().images_per_call(request(), ctx) == 4
    result = await run_task(DashScopeProvider(), request(n=3, width=1280, height=720), ctx)
    assert dash.calls_to("submit")[0].json["parameters"]["size"] == "1280*720"
    assert len(result.images) == 3
    edit_ctx = context(http, bases["dash"], "qwen-image-edit", key="sk-dash")
    req = request(operation="edit", images=(input_png(80, 60),), width=80, height=60)
    edited = await DashScopeProvider().submit(req, edit_ctx)
    assert isinstance(edited, ImageResult) and size_of(edited) == (80, 60)
    (call,) = dash.calls_to("edit")
    content = call.json["input"]["messages"][0]["content"]
    assert content[0]["image"].startswith("data:image/png;base64,")
    assert content[1] == {"text": req.prompt}


async def test_dashscope_errors(http: UpstreamClient, bases: dict[str, str]) -> None:
    ctx = context(http, bases["dash"], "qwen-image", key="sk-dash", options={"poll_interval": 0.01})
    dash.script("submit", Blocked())
    with pytest.raises(ContentPolicyViolation) as blocked:
        await run_task(DashScopeProvider(), request(), ctx)
    assert blocked.value.reason == "DataInspectionFailed"
    dash.script("submit", Fail(400, "size is invalid"), RateLimit(4), Fail(500, "oops"))
    with pytest.raises(InvalidRequest, match="size is invalid"):
        await run_task(DashScopeProvider(), request(), ctx)
    with pytest.raises(RateLimited) as limited:
        await run_task(DashScopeProvider(), request(), ctx)
    assert limited.value.retry_after == 4
    with pytest.raises(UpstreamError):
        await run_task(DashScopeProvider(), request(), ctx)
    dash.script("edit", Blocked())
    edit_ctx = context(http, bases["dash"], "qwen-image-edit", key="sk-dash")
    with pytest.raises(ContentPolicyViolation):
        await DashScopeProvider().submit(request(operation="edit", images=(input_png(),)), edit_ctx)
    with pytest.raises(UpstreamRejected):
        await run_task(DashScopeProvider(), request(),
                       context(http, bases["dash"], "qwen-image", key="wrong"))  # fmt: skip
    assert await DashScopeProvider().check(ctx) == "key accepted"


# -- Ideogram --------------------------------------------------------------------------------


async def test_ideogram_generate_is_multipart_with_the_api_key(
    http: UpstreamClient, bases: dict[str, str]
) -> None:
    ctx = context(http, bases["ideo"], "TURBO", key="ideo-key")
    req = request(n=2, width=1792, height=1024, extras={"seed": 5, "magic_prompt": "OFF"})
    result = await IdeogramProvider().generate(req, ctx)
    (call,) = ideo.calls_to("generate")
    assert call.headers["api-key"] == "ideo-key"
    assert call.form == {"prompt": req.prompt, "rendering_speed": "TURBO", "num_images": "2",
                         "seed": "5", "magic_prompt": "OFF", "aspect_ratio": "16x9"}  # fmt: skip
    assert len(result.images) == 2 and size_of(result) == (1312, 736)


async def test_ideogram_edit_mask_is_black_where_to_change_and_remix_describe(
    http: UpstreamClient, bases: dict[str, str]
) -> None:
    ctx = context(http, bases["ideo"], "DEFAULT", key="ideo-key")
    req = request(operation="edit", images=(input_png(),), mask=domain_mask())
    await IdeogramProvider().generate(req, ctx)
    (call,) = ideo.calls_to("edit")
    assert set(call.files) == {"image", "mask"} and "aspect_ratio" not in call.form
    converted = Image.open(io.BytesIO(black_and_white(domain_mask(), change="black")))
    assert converted.getpixel((5, 5)) == 0 and converted.getpixel((60, 60)) == 255
    await IdeogramProvider().generate(
        request(operation="variation", images=(input_png(),), strength=0.8), ctx
    )
    assert ideo.calls_to("remix")[0].form["image_weight"] == "20"
    described = await IdeogramProvider().generate(
        request(operation="describe", images=(input_png(),)), ctx
    )
    assert described.text == "1. A flat blue field crossed by a pale band."
    assert ideo.calls_to("describe")[0].form == {"describe_model_version": "V_3"}


async def test_ideogram_errors(http: UpstreamClient, bases: dict[str, str]) -> None:
    ctx = context(http, bases["ideo"], "DEFAULT", key="ideo-key")
    ideo.script("generate", Blocked(), Fail(400, "Invalid input"), RateLimit(2), Fail(503))
    with pytest.raises(ContentPolicyViolation):
        await IdeogramProvider().generate(request(), ctx)
    with pytest.raises(InvalidRequest, match="Invalid input"):
        await IdeogramProvider().generate(request(), ctx)
    with pytest.raises(RateLimited) as limited:
        await IdeogramProvider().generate(request(), ctx)
    assert limited.value.retry_after == 2
    with pytest.raises(UpstreamError):
        await IdeogramProvider().generate(request(), ctx)
    bad = context(http, bases["ideo"], "DEFAULT", key="nope")
    with pytest.raises(UpstreamRejected):
        await IdeogramProvider().generate(request(), bad)
    assert await IdeogramProvider().check(ctx) == "key accepted"
    with pytest.raises(UpstreamRejected):
        await IdeogramProvider().check(bad)


# -- Recraft ---------------------------------------------------------------------------------


async def test_recraft_raster_and_svg(http: UpstreamClient, bases: dict[str, str]) -> None:
    ctx = context(http, bases["recraft"], "recraftv3", key="rc-key")
    raster = await RecraftProvider().generate(request(n=2, width=1536, height=1024), ctx)
    first = recraft.calls_to("generate")[0]
    assert first.headers["authorization"] == "Bearer rc-key"
    assert first.json == {"prompt": "a yellow sun over green hills", "model": "recraftv3",
                          "style": "realistic_image", "size": "1536x1024", "n": 2,
                          "response_format": "url"}  # fmt: skip
    assert len(raster.images) == 2 and size_of(raster) == (1536, 1024)
    vector = await RecraftProvider().generate(request(output_format="svg"), ctx)
    assert recraft.calls_to("generate")[1].json["style"] == "vector_illustration"
    assert vector.images[0].output_format == "svg" and b"<svg" in vector.images[0].data


async def test_recraft_vectorize_remove_background_and_errors(
    http: UpstreamClient, bases: dict[str, str]
) -> None:
    ctx = context(http, bases["recraft"], "recraftv3", key="rc-key")
    svg = await RecraftProvider().generate(
        request(operation="variation", images=(input_png(),), output_format="svg"), ctx
    )
    assert "file" in recraft.calls_to("vectorize")[0].files and b"<svg" in svg.images[0].data
    cut = await RecraftProvider().generate(
        request(operation="remove_background", images=(input_png(),)), ctx
    )
    assert cut.background == "transparent" and recraft.calls_to("remove_background")
    recraft.script("generate", Blocked(), Fail(400, "bad size"), RateLimit(3), Fail(500))
    with pytest.raises(ContentPolicyViolation):
        await RecraftProvider().generate(request(), ctx)
    with pytest.raises(InvalidRequest, match="bad size"):
        await RecraftProvider().generate(request(), ctx)
    with pytest.raises(RateLimited):
        await RecraftProvider().generate(request(), ctx)
    with pytest.raises(UpstreamError):
        await RecraftProvider().generate(request(), ctx)
    with pytest.raises(UpstreamRejected):
        await RecraftProvider().check(context(http, bases["recraft"], "recraftv3", key="x"))
    assert await RecraftProvider().check(ctx) == "key accepted (1000 credits)"


# -- Kling -----------------------------------------------------------------------------------


def kling_ctx(http: UpstreamClient, base: str, secret: str = SECRET) -> object:
    from imagegate.core.upstream import ProviderContext

    ctx = context(http, base, "kling-v2-1", key="ak-1", credential="access_key",
                  options={"poll_interval": 0.01})  # fmt: skip
    assert isinstance(ctx, ProviderContext)
    return ProviderContext(
        http=ctx.http, request_id=ctx.request_id, upstream_model=ctx.upstream_model,
        deadline=ctx.deadline, credentials={"access_key": "ak-1", "secret_key": secret},
        base_url=ctx.base_url, options=ctx.options, fetch=ctx.fetch,
    )  # fmt: skip


async def test_kling_signs_a_jwt_and_polls(http: UpstreamClient, bases: dict[str, str]) -> None:
    from imagegate.core.upstream import ProviderContext

    ctx = kling_ctx(http, bases["kling"])
    assert isinstance(ctx, ProviderContext)
    req = request(operation="edit", images=(input_png(),), n=2, width=1792, height=1024)
    result = await run_task(KlingProvider(), req, ctx)
    (call,) = kling.calls_to("submit")
    token = call.headers["authorization"].removeprefix("Bearer ")
    claims = jwt.decode(token, SECRET, algorithms=["HS256"], issuer="ak-1")
    assert claims["exp"] - claims["nbf"] == 1805
    assert call.json["model_name"] == "kling-v2-1" and call.json["aspect_ratio"] == "16:9"
    assert call.json["n"] == 2 and base64.b64decode(call.json["image"]) == input_png().data
    assert len(result.images) == 2
    assert await KlingProvider().check(ctx) == "keys accepted"


async def test_kling_errors(http: UpstreamClient, bases: dict[str, str]) -> None:
    from imagegate.core.upstream import ProviderContext

    ctx = kling_ctx(http, bases["kling"])
    assert isinstance(ctx, ProviderContext)
    kling.script("submit", Blocked(), Fail(400, "invalid n"), RateLimit(5), Fail(500))
    with pytest.raises(ContentPolicyViolation):
        await run_task(KlingProvider(), request(), ctx)
    with pytest.raises(InvalidRequest, match="invalid n"):
        await run_task(KlingProvider(), request(), ctx)
    with pytest.raises(RateLimited) as limited:
        await run_task(KlingProvider(), request(), ctx)
    assert limited.value.retry_after == 5
    with pytest.raises(UpstreamError):
        await run_task(KlingProvider(), request(), ctx)
    kling.script("submit", Fail(429, "resource pack depleted", code="1102"))
    with pytest.raises(UpstreamRejected):
        await run_task(KlingProvider(), request(), ctx)
    wrong = kling_ctx(http, bases["kling"], secret="not-the-secret-but-also-thirty-two-bytes")
    assert isinstance(wrong, ProviderContext)
    with pytest.raises(UpstreamRejected):
        await run_task(KlingProvider(), request(), wrong)
