"""The Gemini wire format (``/v1beta``) over plain HTTP, on the built-in renderer."""

from __future__ import annotations

import base64
import io
import logging
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import sqlalchemy as sa
from PIL import Image

from imagegate.core.catalog import load_catalog
from imagegate.core.requests import ImageRequest, ImageResult
from imagegate.core.upstream import ProviderContext
from imagegate.errors import ContentPolicyViolation, UpstreamError
from imagegate.fronts.gemini.wire import fitted_size
from imagegate.providers.registry import ProviderRegistry
from imagegate.storage.tables import usage
from tests.api.images import png
from tests.conftest import Gateway

GENERATE = "/v1beta/models/sketch:generateContent"
STREAM = "/v1beta/models/sketch:streamGenerateContent"
PREDICT = "/v1beta/models/sketch:predict"


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def user(*parts: dict[str, Any]) -> dict[str, Any]:
    return {"role": "user", "parts": list(parts)}


def image_part(data: bytes, mime: str = "image/png") -> dict[str, Any]:
    return {"inlineData": {"mimeType": mime, "data": b64(data)}}


def decode(part: dict[str, Any]) -> Image.Image:
    return Image.open(io.BytesIO(base64.b64decode(part["inlineData"]["data"])))


def images_of(body: dict[str, Any]) -> list[Image.Image]:
    return [
        decode(part)
        for candidate in body["candidates"]
        for part in candidate["content"]["parts"]
        if "inlineData" in part
    ]


async def post(
    gateway: Gateway, body: dict[str, Any], route: str = GENERATE, **headers: str
) -> httpx.Response:
    auth = {"x-goog-api-key": gateway.key}
    return await gateway.client.post(route, json=body, headers={**auth, **headers})


def prompt_body(prompt: str, **config: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"contents": [user({"text": prompt})]}
    if config:
        body["generationConfig"] = config
    return body


def assert_google_error(response: httpx.Response, code: int, status: str) -> str:
    assert response.status_code == code, response.text
    assert response.headers["content-type"] == "application/json"
    error = response.json()["error"]
    assert (error["code"], error["status"]) == (code, status)
    assert error["message"].endswith(f" (request id: {response.headers['x-request-id']})")
    return str(error["message"])


def sse_chunks(text: str) -> list[dict[str, Any]]:
    assert text.endswith("\r\n\r\n")
    events = text.split("\r\n\r\n")[:-1]
    assert all(event.startswith("data: ") for event in events)
    return [orjson.loads(event[len("data: ") :]) for event in events]


# generateContent


async def test_generate_returns_text_then_a_png(gateway: Gateway) -> None:
    response = await post(gateway, prompt_body("a red house under a yellow sun"))
    assert response.status_code == 200, response.text
    body = response.json()
    (candidate,) = body["candidates"]
    assert (candidate["finishReason"], candidate["index"]) == ("STOP", 0)
    assert candidate["content"]["role"] == "model"
    text, image = candidate["content"]["parts"]
    assert "red house" in text["text"] and "yellow sun" in text["text"]
    assert image["inlineData"]["mimeType"] == "image/png"
    picture = decode(image)
    assert (picture.format, picture.size) == ("PNG", (1024, 1024))
    meta = body["usageMetadata"]
    assert meta["promptTokenCount"] > 0 and meta["candidatesTokenCount"] > 0
    assert meta["totalTokenCount"] == meta["promptTokenCount"] + meta["candidatesTokenCount"]
    assert body["modelVersion"] == "sketch"
    assert body["responseId"] == response.headers["x-request-id"]


async def test_image_only_modality_has_no_text_part(gateway: Gateway) -> None:
    response = await post(gateway, prompt_body("blue sea", responseModalities=["IMAGE"]))
    assert response.status_code == 200, response.text
    (part,) = response.json()["candidates"][0]["content"]["parts"]
    assert "inlineData" in part


@pytest.mark.parametrize("modalities", [["TEXT"], ["AUDIO"], ["image"]])
async def test_modalities_without_image_are_refused(
    gateway: Gateway, modalities: list[str]
) -> None:
    response = await post(gateway, prompt_body("sea", responseModalities=modalities))
    message = assert_google_error(response, 400, "INVALID_ARGUMENT")
    assert "responseModalities" in message


async def test_snake_case_gives_the_same_answer_as_camel_case(gateway: Gateway) -> None:
    source = png((256, 256))
    camel = {
        "contents": [user({"text": "a pink heart"}, image_part(source))],
        "generationConfig": {
            "responseModalities": ["TEXT", "IMAGE"],
            "candidateCount": 2,
            "seed": 3,
            "imageConfig": {"aspectRatio": "3:2", "imageSize": "1K"},
        },
    }
    snake = {
        "contents": [
            user(
                {"text": "a pink heart"},
                {"inline_data": {"mime_type": "image/png", "data": b64(source)}},
            )
        ],
        "generation_config": {
            "response_modalities": ["TEXT", "IMAGE"],
            "candidate_count": 2,
            "seed": 3,
            "image_config": {"aspect_ratio": "3:2", "image_size": "1K"},
        },
    }
    first, second = (await post(gateway, camel)).json(), (await post(gateway, snake)).json()
    assert first["candidates"] == second["candidates"]
    assert [image.size for image in images_of(first)] == [(1536, 1024)] * 2


@pytest.mark.parametrize(
    ("ratio", "size", "adjusted"),
    [
        # sketch's presets where one has the shape, else exactly the ratio on its free range
        ("1:1", (1024, 1024), False),
        ("2:3", (1024, 1536), False),
        ("3:2", (1536, 1024), False),
        ("3:4", (864, 1152), False),
        ("4:3", (1152, 864), False),
        ("4:5", (896, 1120), False),
        ("5:4", (1120, 896), False),
        ("9:16", (720, 1280), False),
        ("16:9", (1280, 720), False),
        ("21:9", (1568, 672), False),
    ],
)
async def test_aspect_ratios_map_to_the_closest_declared_size(
    gateway: Gateway, ratio: str, size: tuple[int, int], adjusted: bool
) -> None:
    config = {"responseModalities": ["IMAGE"], "imageConfig": {"aspectRatio": ratio}}
    response = await post(gateway, prompt_body("green hills", **config))
    assert response.status_code == 200, response.text
    assert images_of(response.json())[0].size == size
    header = response.headers.get("x-imagegate-adjusted-params")
    if adjusted:
        assert header == f"aspectRatio={ratio}->{size[0]}x{size[1]}"
    else:
        assert header is None


async def test_image_size_larger_than_the_model_makes_is_reported(gateway: Gateway) -> None:
    config = {"imageConfig": {"imageSize": "2K"}}
    response = await post(gateway, prompt_body("moon", **config))
    assert images_of(response.json())[0].size == (1024, 1024)
    assert response.headers["x-imagegate-adjusted-params"] == "imageSize=2K->1024x1024"


@pytest.mark.parametrize(
    ("config", "field"),
    [
        ({"imageConfig": {"aspectRatio": "7:5"}}, "aspectRatio"),
        ({"imageConfig": {"aspectRatio": "16x9"}}, "aspectRatio"),
        ({"imageConfig": {"imageSize": "8K"}}, "imageSize"),
        ({"image_config": {"image_size": "1k"}}, "image"),
        ({"candidateCount": 0}, "candidateCount"),
        ({"candidateCount": 11}, "candidateCount"),
        ({"candidateCount": "2"}, "candidateCount"),
        ({"seed": -1}, "seed"),
        ({"seed": "7"}, "seed"),
        ({"imageConfig": {"outputMimeType": "image/gif"}}, "outputMimeType"),
    ],
)
async def test_bad_generation_config_is_invalid_argument(
    gateway: Gateway, config: dict[str, Any], field: str
) -> None:
    message = assert_google_error(
        await post(gateway, prompt_body("sun", **config)), 400, "INVALID_ARGUMENT"
    )
    assert field in message


async def test_output_mime_type_and_compression(gateway: Gateway) -> None:
    image_config = {"outputMimeType": "image/jpeg", "outputCompressionQuality": 50}
    response = await post(gateway, prompt_body("sun", imageConfig=image_config))
    part = response.json()["candidates"][0]["content"]["parts"][1]
    assert part["inlineData"]["mimeType"] == "image/jpeg"
    assert decode(part).format == "JPEG"


async def test_candidate_count_gives_one_candidate_per_image(gateway: Gateway) -> None:
    config = {"candidateCount": 3, "imageConfig": {"aspectRatio": "1:1"}}
    body = (await post(gateway, prompt_body("stars over the sea", **config))).json()
    assert [c["index"] for c in body["candidates"]] == [0, 1, 2]
    assert all(c["finishReason"] == "STOP" for c in body["candidates"])
    data = [c["content"]["parts"][1]["inlineData"]["data"] for c in body["candidates"]]
    assert len(set(data)) == 3


async def test_seed_is_deterministic(gateway: Gateway) -> None:
    def body(seed: int) -> dict[str, Any]:
        return prompt_body("white clouds", seed=seed, responseModalities=["IMAGE"])

    first = (await post(gateway, body(7))).json()
    again = (await post(gateway, body(7))).json()
    other = (await post(gateway, body(8))).json()
    assert first["candidates"] == again["candidates"]
    assert first["candidates"] != other["candidates"]


async def test_sampling_fields_are_ignored_and_reported(gateway: Gateway) -> None:
    body = prompt_body("sun", temperature=0.2, topP=0.9, maxOutputTokens=100)
    body["safetySettings"] = [{"category": "HARM_CATEGORY_HATE_SPEECH", "threshold": "BLOCK_NONE"}]
    body["systemInstruction"] = {"parts": [{"text": "You draw."}]}
    response = await post(gateway, body)
    assert response.status_code == 200, response.text
    assert response.headers["x-imagegate-ignored-params"].split(",") == [
        "systemInstruction",
        "safetySettings",
        "generationConfig.temperature",
        "generationConfig.topP",
        "generationConfig.maxOutputTokens",
    ]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "contents"),
        ({"contents": []}, "contents"),
        ({"contents": [{"role": "user", "parts": []}]}, "parts"),
        ({"contents": [{"role": "model", "parts": [{"text": "x"}]}]}, "user turn"),
        ({"contents": [{"role": "system", "parts": [{"text": "x"}]}]}, "role"),
        ({"contents": [user({"text": 5})]}, "text"),
        ({"contents": [user({"text": "a", **image_part(b"x")})]}, "one of"),
        ({"contents": [user({"text": ""})]}, "contents"),
        ({"contents": [user({"text": "x"})], "contnets": []}, "contnets"),
        ({"contents": [user({"inlineData": {"data": "x"}})]}, "mimeType"),
    ],
)
async def test_malformed_contents_are_invalid_argument(
    gateway: Gateway, body: dict[str, Any], field: str
) -> None:
    message = assert_google_error(await post(gateway, body), 400, "INVALID_ARGUMENT")
    assert field in message


@pytest.mark.parametrize("content", [b"", b"{", b"[]", b"\xff"])
async def test_bodies_that_are_not_json_objects(gateway: Gateway, content: bytes) -> None:
    response = await gateway.client.post(
        GENERATE,
        content=content,
        headers={"x-goog-api-key": gateway.key, "content-type": "application/json"},
    )
    assert_google_error(response, 400, "INVALID_ARGUMENT")


# Auth


@pytest.mark.parametrize("how", ["bearer", "header", "query"])
async def test_three_ways_to_send_the_key(gateway: Gateway, how: str) -> None:
    body = prompt_body("sun", responseModalities=["IMAGE"])
    headers = {
        "bearer": {"Authorization": f"Bearer {gateway.key}"},
        "header": {"x-goog-api-key": gateway.key},
        "query": {},
    }[how]
    route = f"{GENERATE}?key={gateway.key}" if how == "query" else GENERATE
    response = await gateway.client.post(route, json=body, headers=headers)
    assert response.status_code == 200, response.text


@pytest.mark.parametrize("how", ["none", "bearer", "header", "query"])
async def test_missing_or_unknown_keys_are_unauthenticated(gateway: Gateway, how: str) -> None:
    headers = {
        "none": {},
        "bearer": {"Authorization": "Bearer nope"},
        "header": {"x-goog-api-key": "nope"},
        "query": {},
    }[how]
    route = f"{GENERATE}?key=nope" if how == "query" else GENERATE
    response = await gateway.client.post(route, json=prompt_body("sun"), headers=headers)
    message = assert_google_error(response, 401, "UNAUTHENTICATED")
    assert ("x-goog-api-key" in message) == (how == "none")


async def test_key_restricted_to_other_models_is_permission_denied(gateway: Gateway) -> None:
    _, secret = await gateway.services.keys.create(models=("gpt-image-*",))
    response = await gateway.client.post(
        GENERATE, json=prompt_body("sun"), headers={"x-goog-api-key": secret}
    )
    assert_google_error(response, 403, "PERMISSION_DENIED")
    listed = await gateway.client.get("/v1beta/models", headers={"x-goog-api-key": secret})
    assert listed.json() == {"models": []}


async def test_the_query_key_never_reaches_the_log(
    gateway: Gateway, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    await gateway.client.post(f"{GENERATE}?key={gateway.key}", json=prompt_body("sun"))
    await gateway.client.get(f"/v1beta/models?key={gateway.key}")
    await gateway.client.post(f"{GENERATE}?key={gateway.key}x", json=prompt_body("sun"))
    ours = [record for record in caplog.records if record.name.startswith("imagegate")]
    logged = "\n".join(record.getMessage() for record in ours)
    assert "/v1beta/models" in logged
    assert gateway.key not in logged


# Models and routes


async def test_unknown_model_is_not_found(gateway: Gateway) -> None:
    response = await post(gateway, prompt_body("sun"), "/v1beta/models/nope:generateContent")
    message = assert_google_error(response, 404, "NOT_FOUND")
    assert message.startswith("models/nope is not found for API version v1beta")


async def test_unknown_method_is_not_found(gateway: Gateway) -> None:
    for route in ["/v1beta/models/sketch:countTokens", "/v1beta/models/sketch", "/v1beta/x"]:
        assert_google_error(await post(gateway, {}, route), 404, "NOT_FOUND")


async def test_alias_with_a_slash_resolves(gateway: Gateway) -> None:
    route = "/v1beta/models/imagegate/sketch:generateContent"
    response = await post(gateway, prompt_body("sun"), route)
    assert response.status_code == 200, response.text
    assert response.json()["modelVersion"] == "sketch"


async def test_model_without_credentials_is_unavailable(gateway: Gateway) -> None:
    route = "/v1beta/models/gpt-image-1:generateContent"
    message = assert_google_error(
        await post(gateway, prompt_body("sun"), route), 503, "UNAVAILABLE"
    )
    assert "OPENAI_API_KEY" in message


async def test_models_list_and_get(gateway: Gateway) -> None:
    listed = await gateway.client.get("/v1beta/models", headers={"x-goog-api-key": gateway.key})
    assert listed.status_code == 200
    (model,) = [m for m in listed.json()["models"] if m["name"] == "models/sketch"]
    assert model["supportedGenerationMethods"] == [
        "generateContent",
        "streamGenerateContent",
        "predict",
    ]
    fields = {"version", "displayName", "description", "inputTokenLimit", "outputTokenLimit"}
    assert fields <= set(model)
    for path in ["sketch", "imagegate/sketch"]:
        one = await gateway.client.get(f"/v1beta/models/{path}?key={gateway.key}")
        assert one.json() == model
    missing = await gateway.client.get(f"/v1beta/models/nope?key={gateway.key}")
    assert_google_error(missing, 404, "NOT_FOUND")


async def test_models_list_pages(gateway: Gateway, tmp_path: Path) -> None:
    config = tmp_path / "imagegate.toml"
    config.write_text(
        '[[models]]\nid = "sketch-copy"\nname = "Sketch copy"\nprovider = "imagegate"\n'
        'provider_code = "local"\ncreated = 1764115200\nfeatures = ["text-to-image"]\n'
        '[[models.deployments]]\nprovider = "local"\nmodel = "sketch"\n'
    )
    services = gateway.services
    services.catalog = services.images.catalog = load_catalog(services.images._registry, config)
    key = f"key={gateway.key}"
    everything = (await gateway.client.get(f"/v1beta/models?{key}")).json()["models"]
    walked, token, pages = [], "", 0
    while token is not None:
        page = (
            await gateway.client.get(f"/v1beta/models?pageSize=1&pageToken={token}&{key}")
        ).json()
        walked += page["models"]
        token, pages = page.get("nextPageToken"), pages + 1
    assert walked == everything and pages == len(everything) >= 2
    past = (await gateway.client.get(f"/v1beta/models?pageToken=500&{key}")).json()
    assert past == {"models": []}
    for bad_token in ["abc", "9" * 5000, "²"]:
        bad = await gateway.client.get(f"/v1beta/models?pageToken={bad_token}&{key}")
        assert_google_error(bad, 400, "INVALID_ARGUMENT")
    too_big = await gateway.client.get(f"/v1beta/models?pageSize=1001&{key}")
    assert_google_error(too_big, 400, "INVALID_ARGUMENT")


# Input images


async def test_edit_with_an_inline_image(gateway: Gateway) -> None:
    body = {"contents": [user({"text": "add a yellow sun"}, image_part(png((512, 512))))]}
    response = await post(gateway, body)
    assert response.status_code == 200, response.text
    text, _ = response.json()["candidates"][0]["content"]["parts"]
    assert text["text"].startswith("Here is your edited picture")
    assert images_of(response.json())[0].size == (512, 512)


async def test_data_uri_inline_data_is_accepted(gateway: Gateway) -> None:
    data = "data:image/png;base64," + b64(png((256, 256)))
    part = {"inlineData": {"mimeType": "image/png", "data": data}}
    response = await post(gateway, {"contents": [user({"text": "red circle"}, part)]})
    assert response.status_code == 200, response.text


async def test_multi_turn_edit_uses_the_models_last_image(gateway: Gateway) -> None:
    first = await post(gateway, prompt_body("a red house", imageConfig={"aspectRatio": "3:2"}))
    answer = first.json()["candidates"][0]["content"]
    history = [user({"text": "a red house"}), answer, user({"text": "add a yellow sun"})]
    second = await post(gateway, {"contents": history})
    assert second.status_code == 200, second.text
    text = second.json()["candidates"][0]["content"]["parts"][0]["text"]
    assert text == "Here is your edited picture, now with the yellow sun."
    assert images_of(second.json())[0].size == (1536, 1024)
    fresh = await post(gateway, prompt_body("add a yellow sun"))
    assert images_of(fresh.json())[0].size == (1024, 1024)


async def test_thought_parts_are_skipped(gateway: Gateway) -> None:
    thought = {**image_part(b"not an image"), "thought": True}
    model_turn = {"role": "model", "parts": [thought]}
    body = {"contents": [user({"text": "sun"}), model_turn, user({"text": "moon"})]}
    response = await post(gateway, body)
    assert response.status_code == 200, response.text
    assert response.json()["candidates"][0]["content"]["parts"][0]["text"].startswith(
        "Here is a picture of the"
    )


async def test_fourteen_images_are_accepted_and_fifteen_refused(gateway: Gateway) -> None:
    small = image_part(png((32, 32)))
    ok = await post(gateway, {"contents": [user({"text": "blend"}, *[small] * 14)]})
    assert ok.status_code == 200, ok.text
    too_many = await post(gateway, {"contents": [user({"text": "blend"}, *[small] * 15)]})
    message = assert_google_error(too_many, 400, "INVALID_ARGUMENT")
    assert "contents[0].parts[15].inlineData.data" in message


async def test_only_the_last_turns_images_count_towards_the_limit(gateway: Gateway) -> None:
    small = image_part(png((32, 32)))
    history = [user({"text": "blend"}, *[small] * 14), {"role": "model", "parts": [small]}]
    response = await post(gateway, {"contents": [*history, user({"text": "add a sun"})]})
    assert response.status_code == 200, response.text


async def test_a_url_in_inline_data_is_refused(gateway: Gateway) -> None:
    part = {"inlineData": {"mimeType": "image/png", "data": "http://127.0.0.1/a.png"}}
    response = await post(gateway, {"contents": [user({"text": "sun"}, part)]})
    message = assert_google_error(response, 400, "INVALID_ARGUMENT")
    assert "contents[0].parts[1].inlineData.data must be base64" in message


async def test_bad_base64_is_invalid_argument(gateway: Gateway) -> None:
    part = {"inlineData": {"mimeType": "image/png", "data": "!!!not base64!!!"}}
    response = await post(gateway, {"contents": [user({"text": "sun"}, part)]})
    message = assert_google_error(response, 400, "INVALID_ARGUMENT")
    assert "contents[0].parts[1].inlineData.data" in message


async def test_non_image_inline_data_is_refused(gateway: Gateway) -> None:
    part = image_part(b"hello", "text/plain")
    response = await post(gateway, {"contents": [user({"text": "sun"}, part)]})
    message = assert_google_error(response, 400, "INVALID_ARGUMENT")
    assert "contents[0].parts[1].inlineData.mimeType" in message


@pytest.mark.parametrize(
    "uri", ["http://127.0.0.1:9/a.png", "http://169.254.169.254/latest", "file:///etc/passwd"]
)
async def test_file_data_to_private_addresses_is_refused(gateway: Gateway, uri: str) -> None:
    part = {"fileData": {"mimeType": "image/png", "fileUri": uri}}
    response = await post(gateway, {"contents": [user({"text": "sun"}, part)]})
    message = assert_google_error(response, 400, "INVALID_ARGUMENT")
    assert "contents[0].parts[1].fileData.fileUri" in message


async def test_file_data_may_name_an_uploaded_file(gateway: Gateway) -> None:
    uploaded = await gateway.client.post(
        "/v1/files",
        files={"file": ("a.png", png((256, 256)), "image/png")},
        data={"purpose": "vision"},
        headers=gateway.auth,
    )
    part = {"file_data": {"file_uri": uploaded.json()["id"], "mime_type": "image/png"}}
    response = await post(gateway, {"contents": [user({"text": "add a red heart"}, part)]})
    assert response.status_code == 200, response.text
    assert images_of(response.json())[0].size == (256, 256)
    missing = {"fileData": {"fileUri": "file-nope"}}
    gone = await post(gateway, {"contents": [user({"text": "x"}, missing)]})
    assert_google_error(gone, 404, "NOT_FOUND")


# Streaming


async def test_sse_stream_sends_text_then_image_then_finish(gateway: Gateway) -> None:
    response = await post(gateway, prompt_body("a boat on the sea"), f"{STREAM}?alt=sse")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/event-stream")
    text, image = sse_chunks(response.text)
    assert text["candidates"][0]["content"]["parts"][0]["text"].endswith("the sea.")
    assert "finishReason" not in text["candidates"][0] and "usageMetadata" not in text
    assert image["candidates"][0]["finishReason"] == "STOP"
    assert decode(image["candidates"][0]["content"]["parts"][0]).size == (1024, 1024)
    assert image["usageMetadata"]["totalTokenCount"] > 0
    assert {chunk["responseId"] for chunk in (text, image)} == {response.headers["x-request-id"]}


async def test_sse_stream_with_several_candidates(gateway: Gateway) -> None:
    body = prompt_body("sun", candidateCount=2, responseModalities=["IMAGE"])
    chunks = sse_chunks((await post(gateway, body, f"{STREAM}?alt=sse")).text)
    assert [chunk["candidates"][0]["index"] for chunk in chunks] == [0, 1]
    assert ["usageMetadata" in chunk for chunk in chunks] == [False, True]


async def test_stream_without_alt_is_a_json_array(gateway: Gateway) -> None:
    response = await post(gateway, prompt_body("moon"), STREAM)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    text, image = response.json()
    assert "text" in text["candidates"][0]["content"]["parts"][0]
    assert image["candidates"][0]["finishReason"] == "STOP"


async def test_stream_errors_before_streaming_are_json(gateway: Gateway) -> None:
    body = prompt_body("moon", imageConfig={"aspectRatio": "1:3"})
    assert_google_error(await post(gateway, body, f"{STREAM}?alt=sse"), 400, "INVALID_ARGUMENT")
    bad_alt = await post(gateway, prompt_body("moon"), f"{STREAM}?alt=proto")
    assert_google_error(bad_alt, 400, "INVALID_ARGUMENT")


async def test_stream_errors_while_streaming_are_an_error_chunk(
    gateway: Gateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    refuse(gateway, monkeypatch, UpstreamError("the upstream fell over"))
    response = await post(gateway, prompt_body("moon"), f"{STREAM}?alt=sse")
    assert response.status_code == 200
    (chunk,) = sse_chunks(response.text)
    assert chunk["error"]["code"] == 502 and chunk["error"]["status"] == "UNAVAILABLE"


# Safety blocks


def refuse(gateway: Gateway, monkeypatch: pytest.MonkeyPatch, error: Exception) -> None:
    provider = gateway.services.images._registry.get("local")

    async def blocked(request: ImageRequest, ctx: ProviderContext) -> ImageResult:
        raise error

    monkeypatch.setattr(provider, "generate", blocked)


async def test_withheld_output_is_a_200_with_a_safety_finish_reason(
    gateway: Gateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    refuse(gateway, monkeypatch, ContentPolicyViolation("unsafe image", reason="IMAGE_SAFETY"))
    response = await post(gateway, prompt_body("sun"))
    assert response.status_code == 200, response.text
    (candidate,) = response.json()["candidates"]
    assert candidate["finishReason"] == "IMAGE_SAFETY" and "content" not in candidate
    (chunk,) = sse_chunks((await post(gateway, prompt_body("sun"), f"{STREAM}?alt=sse")).text)
    assert chunk["candidates"][0]["finishReason"] == "IMAGE_SAFETY"
    predicted = await post(gateway, {"instances": [{"prompt": "sun"}]}, PREDICT)
    assert predicted.json() == {"predictions": [{"raiFilteredReason": "unsafe image"}]}


async def test_refused_prompt_is_a_200_with_prompt_feedback(
    gateway: Gateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    error = ContentPolicyViolation("no", stage="prompt", reason="PROHIBITED_CONTENT")
    refuse(gateway, monkeypatch, error)
    body = (await post(gateway, prompt_body("sun"))).json()
    assert body["promptFeedback"] == {"blockReason": "PROHIBITED_CONTENT"}
    assert "candidates" not in body
    predicted = await post(gateway, {"instances": [{"prompt": "sun"}]}, PREDICT)
    assert_google_error(predicted, 400, "INVALID_ARGUMENT")


async def test_safety_block_on_openai_routes_is_a_400(
    gateway: Gateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    refuse(gateway, monkeypatch, ContentPolicyViolation("unsafe", reason="IMAGE_SAFETY"))
    response = await gateway.client.post(
        "/v1/images/generations", json={"model": "sketch", "prompt": "sun"}, headers=gateway.auth
    )
    assert response.status_code == 400
    error = response.json()["error"]
    assert (error["code"], error["type"]) == ("content_policy_violation", "invalid_request_error")


# Imagen predict


async def test_predict_returns_predictions(gateway: Gateway) -> None:
    body = {
        "instances": [{"prompt": "purple mountains"}],
        "parameters": {"sampleCount": 2, "aspectRatio": "16:9", "seed": 5},
    }
    response = await post(gateway, body, PREDICT)
    assert response.status_code == 200, response.text
    predictions = response.json()["predictions"]
    assert [p["mimeType"] for p in predictions] == ["image/png", "image/png"]
    pictures = [base64.b64decode(p["bytesBase64Encoded"]) for p in predictions]
    sizes = {Image.open(io.BytesIO(picture)).size for picture in pictures}
    assert sizes == {(1280, 720)}
    assert "x-imagegate-adjusted-params" not in response.headers  # sketch takes 16:9 exactly
    again = await post(gateway, body, PREDICT)
    assert again.json() == response.json()


async def test_predict_defaults_to_four_samples_and_takes_jpeg(gateway: Gateway) -> None:
    body = {
        "instances": [{"prompt": "sun"}],
        "parameters": {
            "outputOptions": {"mimeType": "image/jpeg"},
            "negativePrompt": "clouds",
            "personGeneration": "dont_allow",
        },
    }
    response = await post(gateway, body, PREDICT)
    assert response.status_code == 200, response.text
    predictions = response.json()["predictions"]
    assert len(predictions) == 4 and {p["mimeType"] for p in predictions} == {"image/jpeg"}
    ignored = response.headers["x-imagegate-ignored-params"].split(",")
    assert sorted(ignored) == ["parameters.negativePrompt", "parameters.personGeneration"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"instances": []}, "instances"),
        ({"instances": [{"prompt": "a"}, {"prompt": "b"}]}, "instances"),
        ({"instances": [{}]}, "prompt"),
        ({"instances": [{"prompt": ""}]}, "instances[0].prompt"),
        ({"instances": [{"prompt": "a"}], "parameters": {"sampleCount": 11}}, "sampleCount"),
        ({"instances": [{"prompt": "a"}], "parameters": {"aspectRatio": "2:1"}}, "aspectRatio"),
    ],
)
async def test_bad_predict_bodies(gateway: Gateway, body: dict[str, Any], field: str) -> None:
    message = assert_google_error(await post(gateway, body, PREDICT), 400, "INVALID_ARGUMENT")
    assert field in message


# Usage


async def test_usage_rows_name_the_gemini_route(gateway: Gateway) -> None:
    await post(gateway, prompt_body("sun"))
    await post(gateway, prompt_body("sun", candidateCount=11))
    await post(
        gateway, {"instances": [{"prompt": "sun"}], "parameters": {"sampleCount": 1}}, PREDICT
    )
    await gateway.services.usage.flush()
    async with gateway.services.engine.connect() as conn:
        rows = (await conn.execute(sa.select(usage).order_by(usage.c.created_at))).mappings().all()
    assert [(row["route"], row["status"]) for row in rows] == [
        ("/v1beta/models:generateContent", 200),
        ("/v1beta/models:generateContent", 400),
        ("/v1beta/models:predict", 200),
    ]
    assert rows[0]["model"] == "sketch" and rows[0]["output_tokens"] > 0


@pytest.mark.parametrize(
    ("ratio", "size"),
    [("1:1", "1024x1024"), ("4:3", "1536x1024"), ("9:16", "1024x1536"), ("21:9", "1536x1024")],
)
def test_a_preset_only_model_gets_the_nearest_preset_and_says_so(ratio: str, size: str) -> None:
    entry = load_catalog(ProviderRegistry()).resolve("gpt-image-1")
    assert entry is not None
    fitted, adjusted = fitted_size(entry.spec.generate, ratio, None)
    assert fitted == size
    assert adjusted == ([] if ratio == "1:1" else [f"aspectRatio={ratio}->{size}"])
