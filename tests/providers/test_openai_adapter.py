"""The OpenAI Images adapter (OpenAI, Azure, OpenAI-compatible hosts) against its fake."""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

import pybase64
import pytest
from PIL import Image

from imagegate.core.conform import conform
from imagegate.core.requests import ImageResult, PartialImage
from imagegate.core.upstream import ProviderContext
from imagegate.errors import (
    ContentPolicyViolation,
    InvalidRequest,
    RateLimited,
    Unavailable,
    UpstreamError,
    UpstreamRejected,
    UpstreamTimeout,
)
from imagegate.providers.azure import AzureOpenAIProvider
from imagegate.providers.fakes import (
    Blocked,
    Expired,
    Fail,
    FakeOpenAI,
    NoImage,
    RateLimit,
    Reset,
    Slow,
    Truncated,
)
from imagegate.providers.openai import OpenAIProvider
from imagegate.providers.openai_compatible import OpenAICompatibleProvider
from imagegate.providers.upstream_client import UpstreamClient
from tests.providers.upstream_kit import context, input_png, request, running

KEY = "sk-fake-openai"
fake = FakeOpenAI(KEY)


@pytest.fixture(scope="module")
def base() -> Iterator[str]:
    with running(fake) as url:
        yield url


@pytest.fixture(autouse=True)
def clean() -> None:
    fake.reset()


def ctx(http: UpstreamClient, base: str, model: str = "gpt-image-1", **kw: Any) -> ProviderContext:
    return context(http, f"{base}/v1", model, key=KEY, **kw)


def size_of(data: bytes) -> tuple[int, int]:
    return Image.open(io.BytesIO(data)).size


async def test_gpt_image_generation_sends_its_fields_and_carries_usage(
    http: UpstreamClient, base: str
) -> None:
    req = request(n=2, width=1536, height=1024, quality="low", output_format="webp",
                  output_compression=30, moderation="low", user="u-1")  # fmt: skip
    result = await OpenAIProvider().generate(req, ctx(http, base))
    (call,) = fake.calls_to("generate")
    assert call.headers["authorization"] == f"Bearer {KEY}"
    assert call.json == {
        "model": "gpt-image-1", "prompt": req.prompt, "n": 2, "size": "1536x1024",
        "quality": "low", "moderation": "low", "output_format": "webp",
        "output_compression": 30, "user": "u-1",
    }  # fmt: skip
    assert len(result.images) == 2 and result.quality == "low"
    assert result.usage is not None and result.usage.output_image_tokens == 2 * 272
    assert result.usage.input_text_tokens > 0 and result.usage.input_image_tokens == 0
    conformed = await conform(result, req, "openai")
    assert [(i.output_format, i.width, i.height) for i in conformed.images] == [
        ("webp", 1536, 1024)
    ] * 2


async def test_dall_e_3_takes_style_answers_b64_and_revised_prompt(
    http: UpstreamClient, base: str
) -> None:
    req = request(quality="hd", style="natural", width=1792, moderation="auto",
                  output_format="jpeg")  # fmt: skip
    adapter = OpenAIProvider()
    result = await adapter.generate(req, ctx(http, base, "dall-e-3"))
    (call,) = fake.calls_to("generate")
    assert call.json["response_format"] == "b64_json" and call.json["style"] == "natural"
    assert "output_format" not in call.json and "moderation" not in call.json
    assert result.images[0].revised_prompt and result.images[0].revised_prompt.startswith(
        "A picture"
    )
    assert adapter.dropped_params(req, ctx(http, base, "dall-e-3")) == ["moderation"]
    assert adapter.images_per_call(req, ctx(http, base, "dall-e-3")) == 1
    conformed = await conform(result, req, "openai")  # the gateway converts PNG → JPEG
    assert conformed.images[0].output_format == "jpeg"
    assert Image.open(io.BytesIO(conformed.images[0].data)).format == "JPEG"
    # The upstream's base64 was of the PNG: the JPEG is encoded afresh.
    assert pybase64.b64decode(conformed.images[0].base64()) == conformed.images[0].data


async def test_an_unchanged_image_passes_the_upstreams_base64_on(
    http: UpstreamClient, base: str
) -> None:
    req = request(output_format="png")
    result = await OpenAIProvider().generate(req, ctx(http, base))
    (image,) = (await conform(result, req, "openai")).images
    # Kept as the upstream sent it (a view of its body), not encoded again.
    assert image.b64 is not None and image.base64_ascii() is image.b64
    assert pybase64.b64decode(image.base64()) == image.data


async def test_url_results_are_downloaded_at_once(http: UpstreamClient, base: str) -> None:
    options = {"response_format": "url"}
    result = await OpenAIProvider().generate(
        request(width=512, height=512), ctx(http, base, "dall-e-2", options=options)
    )
    assert "response_format" not in fake.calls[0].json
    assert size_of(result.images[0].data) == (512, 512)


async def test_an_expired_result_url_is_an_upstream_error(http: UpstreamClient, base: str) -> None:
    fake.script("generate", Expired())
    with pytest.raises(UpstreamError) as caught:
        await OpenAIProvider().generate(
            request(), ctx(http, base, "dall-e-2", options={"response_format": "url"})
        )
    assert caught.value.code == "upstream_result_unavailable" and caught.value.status == 502


async def test_edit_sends_several_images_and_a_mask_as_multipart(
    http: UpstreamClient, base: str
) -> None:
    images = (input_png(colour=1), input_png(colour=2), input_png(colour=3))
    req = request(operation="edit", images=images, mask=input_png(), input_fidelity="high")
    result = await OpenAIProvider().generate(req, ctx(http, base))
    (call,) = fake.calls_to("edit")
    assert [name for name in call.files] == ["image[]", "mask"]
    assert len(call.files["image[]"]) == 3 and call.files["mask"][0][1] == "image/png"
    assert call.form["prompt"] == req.prompt and call.form["input_fidelity"] == "high"
    assert "moderation" not in call.form
    assert len(result.images) == 1


async def test_one_edit_image_goes_as_image_and_variations_take_no_prompt(
    http: UpstreamClient, base: str
) -> None:
    adapter = OpenAIProvider()
    await adapter.generate(request(operation="edit", images=(input_png(),)), ctx(http, base))
    assert list(fake.calls_to("edit")[0].files) == ["image"]
    req = request(operation="variation", images=(input_png(),), width=256, height=256, prompt="")
    result = await adapter.generate(req, ctx(http, base, "dall-e-2"))
    (call,) = fake.calls_to("variation")
    assert "prompt" not in call.form and call.form["size"] == "256x256"
    assert size_of(result.images[0].data) == (256, 256)


async def test_streaming_yields_partials_then_one_result_with_usage(
    http: UpstreamClient, base: str
) -> None:
    req = request(partial_images=2)
    events = [event async for event in OpenAIProvider().stream(req, ctx(http, base))]
    assert fake.calls[0].json["stream"] is True and fake.calls[0].json["partial_images"] == 2
    assert [type(e).__name__ for e in events] == ["PartialImage", "PartialImage", "ImageResult"]
    first = events[0]
    assert isinstance(first, PartialImage) and first.partial_index == 0
    final = events[-1]
    assert isinstance(final, ImageResult) and final.usage is not None
    assert size_of(final.images[0].data) == (1024, 1024)


@pytest.mark.parametrize(
    ("step", "error", "code"),
    [
        (Fail(500, "boom"), UpstreamError, "upstream_error"),
        (Fail(503, "overloaded"), Unavailable, "upstream_unavailable"),
        (Fail(400, "bad size", "invalid_value"), InvalidRequest, "invalid_value"),
        (Fail(429, "quota", "insufficient_quota"), UpstreamRejected, "upstream_quota_exhausted"),
        (Fail(404, "no such model", "model_not_found"), UpstreamRejected, "upstream_not_found"),
        (Truncated(), UpstreamError, "upstream_bad_response"),
        (Reset(), UpstreamError, "upstream_connection_error"),
        (NoImage(), UpstreamError, "upstream_no_image"),
    ],
)
async def test_error_mapping(
    http: UpstreamClient, base: str, step: object, error: type[Exception], code: str
) -> None:
    fake.script("generate", step)  # type: ignore[arg-type]
    with pytest.raises(error) as caught:
        await OpenAIProvider().generate(request(), ctx(http, base))
    assert caught.value.code == code  # type: ignore[attr-defined]


async def test_429_carries_retry_after_ms(http: UpstreamClient, base: str) -> None:
    fake.script("generate", RateLimit(0.25))
    with pytest.raises(RateLimited) as caught:
        await OpenAIProvider().generate(request(), ctx(http, base))
    assert caught.value.retry_after == pytest.approx(0.25)


async def test_a_safety_block_is_the_clients_and_keeps_the_reason(
    http: UpstreamClient, base: str
) -> None:
    fake.script("generate", Blocked())
    with pytest.raises(ContentPolicyViolation) as caught:
        await OpenAIProvider().generate(request(), ctx(http, base))
    assert caught.value.status == 400 and caught.value.reason == "moderation_blocked"


async def test_a_wrong_key_is_rejected_without_quoting_it(http: UpstreamClient, base: str) -> None:
    bad = context(http, f"{base}/v1", "gpt-image-1", key="sk-wrong-secret-value")
    with pytest.raises(UpstreamRejected) as caught:
        await OpenAIProvider().generate(request(), bad)
    assert caught.value.code == "upstream_authentication_failed"
    assert "sk-w" not in caught.value.message and "secret" not in caught.value.message


async def test_deadline_and_refused_connection(http: UpstreamClient, base: str) -> None:
    fake.script("generate", Slow(2.0))
    with pytest.raises(UpstreamTimeout):
        await OpenAIProvider().generate(request(), ctx(http, base, seconds=0.3))
    closed = context(http, "http://127.0.0.1:9/v1", "gpt-image-1", key=KEY)
    with pytest.raises(Unavailable) as caught:
        await OpenAIProvider().generate(request(), closed)
    assert caught.value.code == "upstream_unreachable"


async def test_check_calls_the_models_endpoint(http: UpstreamClient, base: str) -> None:
    said = await OpenAIProvider().check(ctx(http, base))
    assert "gpt-image-1" in said and fake.calls[0].path == "/v1/models/gpt-image-1"


async def test_azure_uses_deployment_paths_api_version_and_api_key(
    http: UpstreamClient, base: str
) -> None:
    azure = context(http, base, "my-images", key=KEY, options={"family": "gpt-image"})
    adapter = AzureOpenAIProvider()
    result = await adapter.generate(request(quality="high"), azure)
    (call,) = fake.calls_to("generate")
    assert call.path == "/openai/deployments/my-images/images/generations"
    assert call.query == {"api-version": "2025-04-01-preview"}
    assert call.headers["api-key"] == KEY and "authorization" not in call.headers
    assert call.json["quality"] == "high" and result.usage is not None
    edit = request(operation="edit", images=(input_png(),))
    await adapter.generate(edit, azure)
    assert fake.calls_to("edit")[0].path == "/openai/deployments/my-images/images/edits"
    assert await adapter.check(azure)
    assert fake.calls_to("model")[0].path == "/openai/models"


async def test_a_compatible_host_is_configured_as_data(http: UpstreamClient, base: str) -> None:
    options = {
        "auth_header": "Authorization",
        "model_map": {"grok-2-image": "dall-e-2"},
        "params": ["response_format"],
        "headers": {"x-tenant": "acme"},
    }
    host = context(http, f"{base}/v1", "grok-2-image", key=KEY, options=options)
    adapter = OpenAICompatibleProvider()
    req = request(n=3, width=1024, height=768, style="vivid", user="u")
    result = await adapter.generate(req, host)
    (call,) = fake.calls_to("generate")
    assert call.json == {"model": "dall-e-2", "prompt": req.prompt, "n": 3,
                         "response_format": "b64_json"}  # fmt: skip
    assert call.headers["x-tenant"] == "acme" and len(result.images) == 3
    assert adapter.dropped_params(req, host) == ["size", "style"]


async def test_a_compatible_host_without_a_base_url_is_a_configuration_error(
    http: UpstreamClient,
) -> None:
    from imagegate.errors import ServerError

    with pytest.raises(ServerError, match="base URL"):
        await OpenAICompatibleProvider().generate(request(), context(http, None, "x", key=KEY))
