"""The Gemini adapter (``generateContent`` and Imagen ``predict``) against its fake."""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

import pytest
from PIL import Image

from imagegate.core.upstream import ProviderContext
from imagegate.errors import (
    ContentPolicyViolation,
    InvalidRequest,
    RateLimited,
    UpstreamError,
    UpstreamRejected,
)
from imagegate.providers.fakes import Blocked, Fail, FakeGemini, NoImage, RateLimit, Truncated
from imagegate.providers.gemini import GeminiProvider
from imagegate.providers.gemini_wire import aspect_ratio, size_class
from imagegate.providers.upstream_client import UpstreamClient
from tests.providers.upstream_kit import context, input_png, request, running

KEY = "fake-gemini-key"
fake = FakeGemini(KEY)


@pytest.fixture(scope="module")
def base() -> Iterator[str]:
    with running(fake) as url:
        yield url


@pytest.fixture(autouse=True)
def clean() -> None:
    fake.reset()


def ctx(
    http: UpstreamClient, base: str, model: str = "gemini-2.5-flash-image", **kw: Any
) -> ProviderContext:
    return context(http, base, model, key=KEY, **kw)


async def test_generate_content_sends_the_key_in_a_header_and_skips_thoughts(
    http: UpstreamClient, base: str
) -> None:
    req = request(width=1344, height=768, extras={"seed": 7})
    result = await GeminiProvider().generate(req, ctx(http, base))
    (call,) = fake.calls_to("generate")
    assert call.path == "/v1beta/models/gemini-2.5-flash-image:generateContent"
    assert call.headers["x-goog-api-key"] == KEY and call.query == {}
    config = call.json["generationConfig"]
    assert config == {"responseModalities": ["TEXT", "IMAGE"],
                      "imageConfig": {"aspectRatio": "16:9"}, "seed": 7}  # fmt: skip
    assert call.json["contents"] == [{"role": "user", "parts": [{"text": req.prompt}]}]
    assert len(result.images) == 1  # the thought draft is not a result
    assert Image.open(io.BytesIO(result.images[0].data)).size == (1344, 768)
    assert result.text == "Here is your picture."
    usage = result.usage
    assert usage is not None and usage.output_image_tokens == 1290
    assert (usage.input_text_tokens, usage.output_text_tokens) == (12, 5 + 20)


async def test_edits_send_images_inline_and_count_image_tokens(
    http: UpstreamClient, base: str
) -> None:
    req = request(operation="edit", images=(input_png(), input_png(colour=1)))
    result = await GeminiProvider().generate(req, ctx(http, base))
    parts = fake.calls[0].json["contents"][0]["parts"]
    assert parts[0] == {"text": req.prompt}
    assert [p["inlineData"]["mimeType"] for p in parts[1:]] == ["image/png", "image/png"]
    assert result.usage is not None and result.usage.input_image_tokens == 2 * 258


async def test_size_classes_only_when_the_deployment_offers_them(
    http: UpstreamClient, base: str
) -> None:
    options = {"image_sizes": ["1K", "2K", "4K"]}
    await GeminiProvider().generate(
        request(width=2048, height=2048), ctx(http, base, options=options)
    )
    assert fake.calls[0].json["generationConfig"]["imageConfig"] == {
        "aspectRatio": "1:1", "imageSize": "2K",
    }  # fmt: skip
    assert size_class(1024, 1024, []) is None
    assert aspect_ratio(1536, 672, ["1:1", "21:9", "16:9"]) == "21:9"


@pytest.mark.parametrize(
    ("reason", "stage"),
    [("PROHIBITED_CONTENT", "prompt"), ("IMAGE_SAFETY", "output"), ("SAFETY", "prompt")],
)
async def test_safety_outcomes_keep_googles_reason(
    http: UpstreamClient, base: str, reason: str, stage: str
) -> None:
    fake.script("generate", Blocked(reason))
    with pytest.raises(ContentPolicyViolation) as caught:
        await GeminiProvider().generate(request(), ctx(http, base))
    assert (caught.value.reason, caught.value.stage) == (reason, stage)


async def test_a_text_only_answer_is_a_retryable_no_image(http: UpstreamClient, base: str) -> None:
    fake.script("generate", NoImage())
    with pytest.raises(UpstreamError) as caught:
        await GeminiProvider().generate(request(), ctx(http, base))
    assert caught.value.code == "upstream_no_image" and "cannot draw" in caught.value.message


async def test_retry_info_becomes_retry_after(http: UpstreamClient, base: str) -> None:
    fake.script("generate", RateLimit(34))
    with pytest.raises(RateLimited) as caught:
        await GeminiProvider().generate(request(), ctx(http, base))
    assert caught.value.retry_after == 34


@pytest.mark.parametrize(
    ("step", "error", "code"),
    [
        (Fail(400, "bad"), InvalidRequest, "upstream_invalid_request"),
        (Fail(500, "internal"), UpstreamError, "upstream_error"),
        (Fail(403, "denied"), UpstreamRejected, "upstream_authentication_failed"),
        (Truncated(), UpstreamError, "upstream_bad_response"),
    ],
)
async def test_error_mapping(
    http: UpstreamClient, base: str, step: Any, error: type[Exception], code: str
) -> None:
    fake.script("generate", step)
    with pytest.raises(error) as caught:
        await GeminiProvider().generate(request(), ctx(http, base))
    assert caught.value.code == code  # type: ignore[attr-defined]


async def test_an_invalid_key_is_a_rejected_deployment(http: UpstreamClient, base: str) -> None:
    with pytest.raises(UpstreamRejected):
        await GeminiProvider().generate(
            request(), context(http, base, "gemini-2.5-flash-image", key="AIza-wrong")
        )


async def test_imagen_predict_takes_sample_count_and_mime_type(
    http: UpstreamClient, base: str
) -> None:
    adapter = GeminiProvider()
    imagen = ctx(http, base, "imagen-4.0-generate-001", options={"person_generation": "dont_allow"})
    req = request(n=3, width=1408, height=768, output_format="jpeg", output_compression=20)
    assert adapter.images_per_call(req, imagen) == 4
    result = await adapter.generate(req, imagen)
    (call,) = fake.calls_to("predict")
    assert call.json == {
        "instances": [{"prompt": req.prompt}],
        "parameters": {"sampleCount": 3, "aspectRatio": "16:9", "includeRaiReason": True,
                       "outputOptions": {"mimeType": "image/jpeg", "compressionQuality": 80},
                       "personGeneration": "dont_allow"},
    }  # fmt: skip
    assert len(result.images) == 3 and result.images[0].output_format == "jpeg"


async def test_imagen_filtering_everything_is_a_safety_outcome(
    http: UpstreamClient, base: str
) -> None:
    fake.script("predict", Blocked())
    with pytest.raises(ContentPolicyViolation) as caught:
        await GeminiProvider().generate(request(), ctx(http, base, "imagen-4.0-generate-001"))
    assert caught.value.stage == "output"


async def test_one_image_per_generate_content_call_and_check(
    http: UpstreamClient, base: str
) -> None:
    adapter = GeminiProvider()
    assert adapter.images_per_call(request(n=4), ctx(http, base)) == 1
    assert adapter.dropped_params(request(moderation="low"), ctx(http, base)) == ["moderation"]
    assert "reachable" in await adapter.check(ctx(http, base))
    assert fake.calls[0].path == "/v1beta/models/gemini-2.5-flash-image"
