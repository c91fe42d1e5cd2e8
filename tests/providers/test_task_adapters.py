"""Task upstreams (BFL, Replicate, fal) against their fakes: submit, poll, results, errors."""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

import pytest
from PIL import Image

from imagegate.core.requests import ImageResult
from imagegate.core.upstream import UpstreamJob
from imagegate.errors import (
    ContentPolicyViolation,
    InvalidRequest,
    RateLimited,
    UpstreamError,
    UpstreamRejected,
)
from imagegate.providers._common import same_site
from imagegate.providers._http import parse
from imagegate.providers.bfl import BFLProvider
from imagegate.providers.fakes import (
    Blocked,
    Expired,
    Fail,
    FakeBFL,
    FakeFal,
    FakeReplicate,
    NoImage,
    RateLimit,
)
from imagegate.providers.fal import FalProvider
from imagegate.providers.replicate import ReplicateProvider
from imagegate.providers.upstream_client import UpstreamClient
from tests.providers.upstream_kit import context, input_png, request, run_task, running

bfl, replicate, fal = FakeBFL("bfl-key"), FakeReplicate("r8_key"), FakeFal("fal-key")


@pytest.fixture(scope="module")
def bases() -> Iterator[dict[str, str]]:
    with running(bfl) as a, running(replicate) as b, running(fal) as c:
        yield {"bfl": a, "replicate": b, "fal": c}


@pytest.fixture(autouse=True)
def clean() -> None:
    for fake in (bfl, replicate, fal):
        fake.reset()
    bfl.pending_polls, replicate.pending_polls, fal.pending_polls = 1, 0, 2


def size_of(result: ImageResult) -> tuple[int, int]:
    return Image.open(io.BytesIO(result.images[0].data)).size


# -- Black Forest Labs ----------------------------------------------------------------------


async def test_bfl_submits_polls_and_downloads_the_sample(
    http: UpstreamClient, bases: dict[str, str]
) -> None:
    ctx = context(http, bases["bfl"], "flux-pro-1.1", key="bfl-key")
    req = request(width=1000, height=760, extras={"seed": 3, "safety_tolerance": 2})
    result = await run_task(BFLProvider(), req, ctx)
    (submit,) = bfl.calls_to("submit")
    assert submit.path == "/v1/flux-pro-1.1" and submit.headers["x-key"] == "bfl-key"
    assert submit.json == {"prompt": req.prompt, "output_format": "png", "width": 992,
                           "height": 768, "seed": 3, "safety_tolerance": 2}  # fmt: skip
    assert [c.headers["x-key"] for c in bfl.calls_to("poll")] == ["bfl-key", "bfl-key"]
    assert size_of(result) == (992, 768)


async def test_bfl_kontext_takes_an_aspect_ratio_and_input_images(
    http: UpstreamClient, bases: dict[str, str]
) -> None:
    ctx = context(http, bases["bfl"], "flux-kontext-pro", key="bfl-key")
    req = request(operation="edit", images=(input_png(), input_png(colour=2)),
                  width=1568, height=672, output_format="jpeg")  # fmt: skip
    result = await run_task(BFLProvider(), req, ctx)
    body = bfl.calls_to("submit")[0].json
    assert body["aspect_ratio"] == "7:3" and "width" not in body
    assert body["output_format"] == "jpeg" and {"input_image", "input_image_2"} <= set(body)
    assert result.images[0].output_format == "jpeg"


@pytest.mark.parametrize(
    ("reason", "stage"), [("Content Moderated", "output"), ("Request Moderated", "prompt")]
)
async def test_bfl_moderation_is_a_safety_outcome(
    http: UpstreamClient, bases: dict[str, str], reason: str, stage: str
) -> None:
    bfl.script("submit", Blocked(reason))
    with pytest.raises(ContentPolicyViolation) as caught:
        await run_task(
            BFLProvider(), request(), context(http, bases["bfl"], "flux-dev", key="bfl-key")
        )
    assert caught.value.stage == stage


async def test_bfl_an_expired_sample_and_errors(
    http: UpstreamClient, bases: dict[str, str]
) -> None:
    ctx = context(http, bases["bfl"], "flux-dev", key="bfl-key")
    bfl.script("submit", Expired())
    with pytest.raises(UpstreamError, match="could not download"):
        await run_task(BFLProvider(), request(), ctx)
    bfl.script("submit", Fail(402, "Insufficient credits"))
    with pytest.raises(UpstreamRejected):
        await run_task(BFLProvider(), request(), ctx)
    bfl.script("submit", Fail(422, "width must be a multiple of 32"))
    with pytest.raises(InvalidRequest, match="multiple of 32"):
        await run_task(BFLProvider(), request(), ctx)
    bfl.script("submit", RateLimit(2))
    with pytest.raises(RateLimited) as limited:
        await run_task(BFLProvider(), request(), ctx)
    assert limited.value.retry_after == 2


async def test_bfl_never_sends_the_key_to_a_foreign_polling_url(
    http: UpstreamClient, bases: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from imagegate.providers import bfl as module

    ctx = context(http, bases["bfl"], "flux-dev", key="bfl-key")
    assert not same_site("https://evil.example/v1/get_result?id=1", bases["bfl"])
    assert same_site("https://api.us1.bfl.ai/v1/get_result?id=1", "https://api.bfl.ai")
    original = parse

    def foreign(model: Any, body: bytes, provider: str) -> Any:
        parsed = original(model, body, provider)
        if hasattr(parsed, "polling_url"):
            parsed = parsed.model_copy(update={"polling_url": "https://evil.example/poll"})
        return parsed

    monkeypatch.setattr(module, "parse", foreign)
    job = await BFLProvider().submit(request(), ctx)
    assert job.handles["polling_url"].startswith(bases["bfl"] + "/v1/get_result?id=")


async def test_bfl_check_reads_the_credits(http: UpstreamClient, bases: dict[str, str]) -> None:
    assert await BFLProvider().check(context(http, bases["bfl"], "flux-dev", key="bfl-key"))
    with pytest.raises(UpstreamRejected):
        await BFLProvider().check(context(http, bases["bfl"], "flux-dev", key="wrong"))


# -- Replicate ------------------------------------------------------------------------------


async def test_replicate_answers_in_one_call_with_prefer_wait(
    http: UpstreamClient, bases: dict[str, str]
) -> None:
    ctx = context(http, bases["replicate"], "black-forest-labs/flux-schnell", key="r8_key",
                  credential="api_token", options={"max_n": 4})  # fmt: skip
    req = request(n=2, width=1344, height=768, output_format="webp", extras={"steps": 4})
    adapter = ReplicateProvider()
    assert adapter.has_credentials({"api_token": "x"})
    submitted = await adapter.submit(req, ctx)
    assert isinstance(submitted, ImageResult) and len(submitted.images) == 2
    (call,) = replicate.calls_to("submit")
    assert call.path == "/v1/models/black-forest-labs/flux-schnell/predictions"
    assert call.headers["authorization"] == "Bearer r8_key" and call.headers["prefer"].startswith(
        "wait="
    )
    assert call.json == {"input": {"prompt": req.prompt, "aspect_ratio": "16:9",
                                   "output_format": "webp", "num_outputs": 2,
                                   "num_inference_steps": 4}}  # fmt: skip


async def test_replicate_polls_a_pinned_version_and_cancels(
    http: UpstreamClient, bases: dict[str, str]
) -> None:
    replicate.pending_polls = 2
    ctx = context(http, bases["replicate"], "owner/model:abc123", key="r8_key")
    req = request(operation="edit", images=(input_png(),))
    result = await run_task(ReplicateProvider(), req, ctx)
    call = replicate.calls_to("submit")[0]
    assert call.path == "/v1/predictions" and call.json["version"] == "abc123"
    assert call.json["input"]["input_image"].startswith("data:image/png;base64,")
    assert len(replicate.calls_to("poll")) == 3 and len(result.images) == 1
    job = await ReplicateProvider().submit(request(), ctx)
    assert isinstance(job, UpstreamJob)
    await ReplicateProvider().cancel(job, ctx)
    assert replicate.cancelled == [job.id]


async def test_replicate_failures(http: UpstreamClient, bases: dict[str, str]) -> None:
    ctx = context(http, bases["replicate"], "owner/model", key="r8_key")
    replicate.script("submit", Blocked())
    with pytest.raises(ContentPolicyViolation):
        await run_task(ReplicateProvider(), request(), ctx)
    replicate.script("submit", NoImage())
    with pytest.raises(UpstreamError, match="without output"):
        await run_task(ReplicateProvider(), request(), ctx)
    replicate.script("submit", RateLimit(3))
    with pytest.raises(RateLimited) as limited:
        await run_task(ReplicateProvider(), request(), ctx)
    assert limited.value.retry_after == 3
    with pytest.raises(UpstreamRejected):
        await run_task(
            ReplicateProvider(), request(), context(http, bases["replicate"], "o/m", key="no")
        )
    assert await ReplicateProvider().check(ctx) == "token accepted"


# -- fal ------------------------------------------------------------------------------------


async def test_fal_queue_submit_status_result(http: UpstreamClient, bases: dict[str, str]) -> None:
    ctx = context(http, bases["fal"], "fal-ai/flux/dev", key="fal-key")
    req = request(n=2, width=1024, height=768, output_format="png", extras={"seed": 5})
    result = await run_task(FalProvider(), req, ctx)
    (submit,) = fal.calls_to("submit")
    assert submit.path == "/fal-ai/flux/dev" and submit.headers["authorization"] == "Key fal-key"
    assert submit.json == {"prompt": req.prompt, "image_size": {"width": 1024, "height": 768},
                           "num_images": 2, "output_format": "png", "seed": 5}  # fmt: skip
    assert fal.calls_to("poll")[0].path.startswith("/fal-ai/flux/requests/")
    assert len(fal.calls_to("poll")) == 3 and len(result.images) == 2
    assert size_of(result) == (1024, 768)


async def test_fal_nsfw_images_are_dropped_and_cancel(
    http: UpstreamClient, bases: dict[str, str]
) -> None:
    ctx = context(http, bases["fal"], "fal-ai/flux/dev", key="fal-key")
    fal.script("submit", Blocked())
    with pytest.raises(ContentPolicyViolation):
        await run_task(FalProvider(), request(), ctx)
    job = await FalProvider().submit(request(), ctx)
    await FalProvider().cancel(job, ctx)
    assert fal.cancelled == [job.id]
    assert await FalProvider().check(ctx) == "key accepted"
    with pytest.raises(UpstreamRejected):
        await FalProvider().check(context(http, bases["fal"], "fal-ai/flux/dev", key="nope"))
