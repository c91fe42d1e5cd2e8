"""The gateway in front of real-shaped upstreams: OpenAI and Gemini fakes on loopback, reached
through the built-in deployments' environment variables, with the router's guarantees."""

from __future__ import annotations

import base64
import io
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from PIL import Image

from imagegate.app import create_app
from imagegate.core.routing import RouterSettings
from imagegate.providers.fakes import (
    Blocked,
    Fail,
    FakeGemini,
    FakeOpenAI,
    NoImage,
    RateLimit,
    Reset,
    Truncated,
)
from imagegate.providers.lifted import MIN_LIFTED
from imagegate.settings import Settings
from imagegate.storage.tables import assets, ledger, usage
from tests.api.images import mask, png
from tests.conftest import ADMIN_KEY, Gateway
from tests.providers.upstream_kit import running

OPENAI_KEY, GEMINI_KEY = "sk-upstream-key-123", "gemini-upstream-key"
openai_a, openai_b, gemini = FakeOpenAI(OPENAI_KEY), FakeOpenAI("sk-second"), FakeGemini(GEMINI_KEY)
FAST = RouterSettings(backoff_base=0.01, backoff_max=0.05, cooldown=5, max_wait=2)


@pytest.fixture(scope="module")
def bases() -> Iterator[dict[str, str]]:
    with running(openai_a) as a, running(openai_b) as b, running(gemini) as g:
        yield {"a": a, "b": b, "gemini": g}


@pytest.fixture(autouse=True)
def clean() -> None:
    for fake in (openai_a, openai_b, gemini):
        fake.reset()


async def start(settings: Settings, router: RouterSettings | None = FAST) -> AsyncIterator[Gateway]:
    """The gateway, its router sped up with ``router`` (None: as ``settings`` configure it)."""
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        services = app.state.services
        if router is not None:
            services.images.router.settings = router
        _, secret = await services.keys.create(name="upstream tests")
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway.test") as client:
            yield Gateway(app, client, secret)


@pytest.fixture
async def gateway(
    tmp_path: Path, bases: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Gateway]:
    monkeypatch.setenv("OPENAI_API_KEY", OPENAI_KEY)
    monkeypatch.setenv("OPENAI_BASE_URL", f"{bases['a']}/v1")
    monkeypatch.setenv("GEMINI_API_KEY", GEMINI_KEY)
    monkeypatch.setenv("GOOGLE_GEMINI_BASE_URL", bases["gemini"])
    settings = Settings(data_dir=tmp_path / "data", admin_key=ADMIN_KEY)
    async for gw in start(settings):
        yield gw


async def rows(gw: Gateway, table: sa.Table, request_id: str) -> list[sa.Row[tuple[object, ...]]]:
    await gw.services.usage.flush()
    async with gw.services.engine.connect() as conn:
        result = await conn.execute(sa.select(table).where(table.c.request_id == request_id))
        return list(result)


def image_of(item: dict[str, str]) -> Image.Image:
    return Image.open(io.BytesIO(base64.b64decode(item["b64_json"])))


async def generate(gw: Gateway, **body: object) -> httpx.Response:
    payload = {"model": "gpt-image-1", "prompt": "a lighthouse at dusk", **body}
    return await gw.client.post("/v1/images/generations", json=payload, headers=gw.auth)


async def test_a_generation_reaches_openai_with_the_operators_key(gateway: Gateway) -> None:
    response = await generate(gateway, size="1536x1024", quality="low")
    assert response.status_code == 200, response.text
    body = response.json()
    assert image_of(body["data"][0]).size == (1536, 1024)
    assert body["usage"]["output_tokens"] == 272 and body["quality"] == "low"
    (call,) = openai_a.calls_to("generate")
    assert call.headers["authorization"] == f"Bearer {OPENAI_KEY}"
    assert gateway.key not in str(call.headers)
    catalogue = (await gateway.client.get("/api/models")).json()["data"]
    available = {record["id"] for record in catalogue if record["available"]}
    assert {"gpt-image-1", "dall-e-3", "gemini-2.5-flash-image"} <= available


async def test_5xx_twice_then_200_is_one_image_stored_and_charged_once(gateway: Gateway) -> None:
    openai_a.script("generate", Fail(500), Fail(502, "bad gateway"))
    response = await generate(gateway)
    assert response.status_code == 200 and len(response.json()["data"]) == 1
    assert len(openai_a.calls_to("generate")) == 3
    request_id = response.headers["x-request-id"]
    assert len(await rows(gateway, assets, request_id)) == 1
    (row,) = await rows(gateway, usage, request_id)
    assert row.status == 200 and row.images == 1 and row.cost_usd > 0
    charges = [entry for entry in await rows(gateway, ledger, request_id) if entry.kind == "charge"]
    assert len(charges) == 1 and -charges[0].amount_usd == row.cost_usd


@pytest.mark.parametrize("step", [Reset(), Truncated(), NoImage()])
async def test_a_broken_answer_is_a_clean_502_with_nothing_stored(
    gateway: Gateway, step: object
) -> None:
    openai_a.script("generate", step, step, step)  # type: ignore[arg-type]
    response = await generate(gateway)
    assert response.status_code == 502
    error = response.json()["error"]
    assert error["type"] == "upstream_error" and OPENAI_KEY not in response.text
    assert len(openai_a.calls_to("generate")) == 3
    request_id = response.headers["x-request-id"]
    assert await rows(gateway, assets, request_id) == []
    (row,) = await rows(gateway, usage, request_id)
    assert row.status == 502 and row.cost_usd == 0


async def test_a_short_429_is_waited_out(gateway: Gateway) -> None:
    openai_a.script("generate", RateLimit(0.2))
    response = await generate(gateway)
    assert response.status_code == 200 and len(openai_a.calls_to("generate")) == 2


async def test_a_long_429_is_passed_on_with_retry_after(gateway: Gateway) -> None:
    openai_a.script("generate", RateLimit(40))
    response = await generate(gateway)
    assert response.status_code == 429 and response.headers["retry-after"] == "40"
    assert response.json()["error"]["type"] == "rate_limit_error"


async def test_an_upstream_safety_block_is_a_400_content_policy_violation(gateway: Gateway) -> None:
    openai_a.script("generate", Blocked())
    response = await generate(gateway)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "content_policy_violation"
    assert len(openai_a.calls_to("generate")) == 1  # never retried


async def test_unknown_fields_are_listed_and_formats_converted(gateway: Gateway) -> None:
    response = await generate(
        gateway, model="dall-e-3", moderation="low", output_format="webp",
        response_format="b64_json",
    )  # fmt: skip
    assert response.status_code == 200
    assert response.headers["x-imagegate-ignored-params"] == "moderation"
    assert "moderation" not in openai_a.calls_to("generate")[0].json
    assert image_of(response.json()["data"][0]).format == "WEBP"
    assert response.json()["data"][0]["revised_prompt"].startswith("A picture")


async def test_edits_pass_every_image_and_the_mask(gateway: Gateway) -> None:
    files = [
        ("image[]", ("a.png", png((64, 64)), "image/png")),
        ("image[]", ("b.png", png((64, 64)), "image/png")),
        ("mask", ("m.png", mask((64, 64), (0, 0, 32, 32)), "image/png")),
    ]
    response = await gateway.client.post(
        "/v1/images/edits",
        data={"model": "gpt-image-1", "prompt": "add a boat", "size": "1024x1024"},
        files=files,
        headers=gateway.auth,
    )
    assert response.status_code == 200, response.text
    (call,) = openai_a.calls_to("edit")
    assert len(call.files["image[]"]) == 2 and "mask" in call.files


async def test_streaming_through_the_upstream(gateway: Gateway) -> None:
    response = await generate(gateway, stream=True, partial_images=1, size="1024x1024")
    events = [line for line in response.text.splitlines() if line.startswith("event:")]
    assert events == [
        "event: image_generation.partial_image",
        "event: image_generation.completed",
    ]


async def test_the_openai_route_reaches_gemini(gateway: Gateway) -> None:
    response = await generate(
        gateway, model="gemini-2.5-flash-image", size="1344x768", n=2, output_format="jpeg"
    )
    assert response.status_code == 200, response.text
    data = response.json()["data"]
    assert len(data) == 2 and {image_of(d).size for d in data} == {(1344, 768)}
    assert {image_of(d).format for d in data} == {"JPEG"}
    calls = gemini.calls_to("generate")
    assert len(calls) == 2  # one image per generateContent call, fanned out
    assert calls[0].headers["x-goog-api-key"] == GEMINI_KEY and "key" not in calls[0].query
    assert calls[0].json["generationConfig"]["imageConfig"] == {"aspectRatio": "16:9"}
    assert response.json()["usage"]["output_tokens_details"]["image_tokens"] == 2 * 1290


async def test_a_gemini_safety_block_on_the_openai_route(gateway: Gateway) -> None:
    gemini.script("generate", Blocked("IMAGE_SAFETY"))
    response = await generate(gateway, model="gemini-2.5-flash-image")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "content_policy_violation"


async def test_every_deployment_down_is_503_with_retry_after(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", OPENAI_KEY)
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")  # nothing listens there
    settings = Settings(data_dir=tmp_path / "data", admin_key=ADMIN_KEY)
    async for gw in start(settings):
        response = await generate(gw)
        assert response.status_code == 503
        assert int(response.headers["retry-after"]) >= 1
        assert response.json()["error"]["code"] == "no_healthy_deployment"


async def test_a_429_fails_over_to_the_next_deployment(
    tmp_path: Path, bases: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PRIMARY_KEY", OPENAI_KEY)
    monkeypatch.setenv("SECONDARY_KEY", "sk-second")
    config = tmp_path / "imagegate.toml"
    config.write_text(
        f"""
[[models]]
id = "gpt-image-1"

[[models.deployments]]
provider = "openai"
model = "gpt-image-1"
base_url = "{bases["a"]}/v1"
credentials = {{ api_key = ["PRIMARY_KEY"] }}
priority = 1

[[models.deployments]]
provider = "openai-compatible"
model = "gpt-image-1"
base_url = "{bases["b"]}/v1"
credentials = {{ api_key = ["SECONDARY_KEY"] }}
"""
    )
    settings = Settings(data_dir=tmp_path / "d", admin_key=ADMIN_KEY, config=config)
    async for gw in start(settings):
        openai_a.script("generate", RateLimit(30))
        first = await generate(gw)
        assert first.status_code == 200
        assert len(openai_a.calls_to("generate")) == len(openai_b.calls_to("generate")) == 1
        assert openai_b.calls[0].headers["authorization"] == "Bearer sk-second"
        second = await generate(gw)  # the primary is still blocked by its retry-after
        assert second.status_code == 200 and len(openai_a.calls_to("generate")) == 1


async def test_the_router_is_configured_by_the_operators_settings(
    tmp_path: Path, bases: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", OPENAI_KEY)
    monkeypatch.setenv("OPENAI_BASE_URL", f"{bases['a']}/v1")
    monkeypatch.setenv("IMAGEGATE_UPSTREAM_ATTEMPTS", "1")
    monkeypatch.setenv("IMAGEGATE_UPSTREAM_MAX_WAIT_SECONDS", "0")
    settings = Settings(data_dir=tmp_path / "data", admin_key=ADMIN_KEY)
    async for gw in start(settings, router=None):
        openai_a.script("generate", Fail(500))
        failed = await generate(gw)  # the default (3 attempts) would have tried again
        openai_a.script("generate", RateLimit(0.2))
        limited = await generate(gw)  # the default (30 s) would have waited 0.2 s
    assert failed.status_code == 502
    assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1
    assert len(openai_a.calls_to("generate")) == 2


async def test_a_large_upstream_base64_is_passed_on_in_parts_and_replayed_whole(
    gateway: Gateway,
) -> None:
    """Its base64 is lifted out of the answer and sent as it came (``PartsResponse``): the
    body is whole, its length declared, and an idempotent replay is the same bytes."""
    headers = {**gateway.auth, "Idempotency-Key": "large-1"}
    payload = {"model": "gpt-image-1", "prompt": "noise", "size": "1536x1024"}
    first = await gateway.client.post("/v1/images/generations", json=payload, headers=headers)
    assert first.status_code == 200, first.text
    assert first.headers["content-length"] == str(len(first.content))
    (item,) = first.json()["data"]
    assert len(item["b64_json"]) > MIN_LIFTED
    assert image_of(item).size == (1536, 1024)
    again = await gateway.client.post("/v1/images/generations", json=payload, headers=headers)
    assert again.content == first.content
