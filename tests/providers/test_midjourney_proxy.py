"""The midjourney-proxy adapter against its fake: grids, describe, relay calls, business codes."""

from __future__ import annotations

import io
from collections.abc import Iterator

import pytest
from PIL import Image

from imagegate.errors import ContentPolicyViolation, InvalidRequest, RateLimited
from imagegate.providers.fakes import Blocked, FakeMidjourneyProxy
from imagegate.providers.fakes.midjourney import scripted_code
from imagegate.providers.midjourney_proxy import MidjourneyProxyProvider
from imagegate.providers.upstream_client import UpstreamClient
from tests.providers.upstream_kit import context, input_png, request, run_task, running

SECRET = "mj-secret"
fake = FakeMidjourneyProxy(SECRET)


@pytest.fixture(scope="module")
def base() -> Iterator[str]:
    with running(fake) as url:
        yield url


@pytest.fixture(autouse=True)
def clean() -> None:
    fake.reset()


async def test_imagine_adds_the_aspect_ratio_and_returns_the_grid(
    http: UpstreamClient, base: str
) -> None:
    ctx = context(http, base, "midjourney", key=SECRET, options={"modes": ["RELAX"]})
    req = request(width=1344, height=768, extras={"seed": 9})
    result = await run_task(MidjourneyProxyProvider(), req, ctx)
    (submit,) = fake.calls_to("submit")
    assert submit.path == "/mj/submit/imagine" and submit.headers["mj-api-secret"] == SECRET
    assert submit.json == {"botType": "MID_JOURNEY", "accountFilter": {"modes": ["RELAX"]},
                           "prompt": f"{req.prompt} --ar 7:4 --seed 9"}  # fmt: skip
    assert len(fake.calls_to("fetch")) == 2
    width, height = Image.open(io.BytesIO(result.images[0].data)).size
    assert width > height  # a 2x2 grid in the asked shape


async def test_a_prompt_with_its_own_aspect_ratio_keeps_it(http: UpstreamClient, base: str) -> None:
    ctx = context(http, base, "midjourney", key=SECRET)
    route, body = MidjourneyProxyProvider().submission(request(prompt="a cat --ar 2:3"), ctx)
    assert (route, body["prompt"]) == ("imagine", "a cat --ar 2:3")


async def test_blend_and_describe(http: UpstreamClient, base: str) -> None:
    ctx = context(http, base, "midjourney", key=SECRET)
    adapter = MidjourneyProxyProvider()
    blend = request(
        operation="blend", images=(input_png(), input_png(colour=1)), width=1248, height=832
    )
    await run_task(adapter, blend, ctx)
    body = fake.calls_to("submit")[0].json
    assert body["dimensions"] == "LANDSCAPE" and len(body["base64Array"]) == 2
    described = await run_task(adapter, request(operation="describe", images=(input_png(),)), ctx)
    assert described.images == [] and described.text and described.text.startswith("1️⃣")
    with pytest.raises(InvalidRequest):
        adapter.submission(request(operation="upscale", images=(input_png(),)), ctx)


async def test_business_codes(http: UpstreamClient, base: str) -> None:
    ctx = context(http, base, "midjourney", key=SECRET)
    adapter = MidjourneyProxyProvider()
    fake.script("submit", Blocked("banned word"))
    with pytest.raises(ContentPolicyViolation):
        await adapter.submit(request(), ctx)
    fake.script("submit", scripted_code(23, "queue full"))
    with pytest.raises(RateLimited):
        await adapter.submit(request(), ctx)
    fake.script("submit", scripted_code(4, "prompt is required"))
    with pytest.raises(InvalidRequest, match="prompt is required"):
        await adapter.submit(request(), ctx)


async def test_the_relay_passes_bodies_through(http: UpstreamClient, base: str) -> None:
    ctx = context(http, base, "midjourney", key=SECRET)
    adapter = MidjourneyProxyProvider()
    answer = await adapter.relay_submit("imagine", {"prompt": "a fox", "state": "abc"}, ctx)
    assert answer.code == 1 and isinstance(answer.result, str)
    task = await adapter.relay_fetch(answer.result, ctx)
    assert task.status == "IN_PROGRESS" and task.model_dump()["state"] == "abc"
    task = await adapter.relay_fetch(answer.result, ctx)
    assert task.status == "SUCCESS" and len(task.buttons) == 9
    listed = await adapter.relay_list([answer.result], ctx)
    assert [t.id for t in listed] == [answer.result]
    assert await adapter.check(ctx)
