"""``POST /v1/images/generations`` on the built-in renderer: every field and error case."""

from __future__ import annotations

import base64
import io
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from PIL import Image

from imagegate.storage.tables import usage
from tests.conftest import Gateway

ROUTE = "/v1/images/generations"


def decode(item: dict[str, Any]) -> Image.Image:
    return Image.open(io.BytesIO(base64.b64decode(item["b64_json"])))


async def post(gateway: Gateway, body: dict[str, Any], **headers: str) -> httpx.Response:
    return await gateway.client.post(ROUTE, json=body, headers={**gateway.auth, **headers})


def assert_error(response: httpx.Response, status: int, param: str | None, type_: str) -> None:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["param"] == param
    assert error["type"] == type_
    request_id = response.headers["x-request-id"]
    assert error["message"].endswith(f" (request id: {request_id})")


async def test_default_request_returns_one_png_with_usage(gateway: Gateway) -> None:
    response = await post(gateway, {"model": "sketch", "prompt": "a red house under a yellow sun"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert response.headers["x-request-id"].startswith("req_")
    assert len(body["data"]) == 1
    image = decode(body["data"][0])
    assert (image.format, image.size) == ("PNG", (1024, 1024))
    assert body["size"] == "1024x1024"
    assert body["quality"] == "medium"
    assert body["output_format"] == "png"
    assert body["background"] == "opaque"
    usage = body["usage"]
    assert usage["input_tokens_details"]["text_tokens"] == usage["input_tokens"] > 0
    assert usage["output_tokens_details"]["image_tokens"] == usage["output_tokens"] > 0
    assert usage["total_tokens"] == usage["input_tokens"] + usage["output_tokens"]


async def test_model_defaults_to_the_configured_default(gateway: Gateway) -> None:
    response = await post(gateway, {"prompt": "blue circle"})
    assert response.status_code == 200


async def test_without_a_default_model_the_model_is_required(gateway: Gateway) -> None:
    gateway.services.images._default_model = None
    assert_error(await post(gateway, {"prompt": "x"}), 400, "model", "invalid_request_error")


@pytest.mark.parametrize(
    ("size", "expected"),
    [
        ("256x256", (256, 256)),
        ("512x512", (512, 512)),
        ("1536x1024", (1536, 1024)),
        ("1024x1536", (1024, 1536)),
        ("1792x1024", (1792, 1024)),
        ("1024x1792", (1024, 1792)),
        ("auto", (1024, 1024)),
    ],
)
async def test_every_declared_size(gateway: Gateway, size: str, expected: tuple[int, int]) -> None:
    body = {"model": "sketch", "prompt": "green trees", "size": size, "quality": "low"}
    response = await post(gateway, body)
    assert response.status_code == 200, response.text
    assert decode(response.json()["data"][0]).size == expected
    assert response.json()["size"] == f"{expected[0]}x{expected[1]}"


@pytest.mark.parametrize(("fmt", "pil"), [("png", "PNG"), ("jpeg", "JPEG"), ("webp", "WEBP")])
async def test_output_formats(gateway: Gateway, fmt: str, pil: str) -> None:
    body = {"model": "sketch", "prompt": "a pink heart", "size": "256x256", "output_format": fmt}
    response = await post(gateway, body)
    assert response.status_code == 200
    assert decode(response.json()["data"][0]).format == pil
    assert response.json()["output_format"] == fmt


async def test_output_compression_changes_jpeg_size(gateway: Gateway) -> None:
    sizes = []
    for compression in (0, 90):
        body = {
            "model": "sketch",
            "prompt": "mountains and clouds",
            "size": "512x512",
            "output_format": "jpeg",
            "output_compression": compression,
        }
        response = await post(gateway, body)
        sizes.append(len(response.json()["data"][0]["b64_json"]))
    assert sizes[0] > sizes[1]


async def test_output_compression_with_png_is_ignored_and_reported(gateway: Gateway) -> None:
    body = {"model": "sketch", "prompt": "sun", "size": "256x256", "output_compression": 50}
    response = await post(gateway, body)
    assert response.status_code == 200
    assert response.headers["x-imagegate-ignored-params"] == "output_compression"


async def test_transparent_background(gateway: Gateway) -> None:
    body = {
        "model": "sketch",
        "prompt": "a red circle",
        "background": "transparent",
        "size": "256x256",
    }
    response = await post(gateway, body)
    image = decode(response.json()["data"][0])
    assert image.mode == "RGBA"
    assert image.getpixel((0, 0))[3] == 0  # type: ignore[index]
    assert response.json()["background"] == "transparent"


async def test_transparent_background_refuses_jpeg(gateway: Gateway) -> None:
    body = {"model": "sketch", "prompt": "x", "background": "transparent", "output_format": "jpeg"}
    assert_error(await post(gateway, body), 400, "background", "invalid_request_error")


async def test_n_gives_different_images_and_seed_is_deterministic(gateway: Gateway) -> None:
    body = {"model": "sketch", "prompt": "stars over the sea", "size": "256x256", "n": 3, "seed": 7}
    first = (await post(gateway, body)).json()
    again = (await post(gateway, body)).json()
    images = [item["b64_json"] for item in first["data"]]
    assert len(set(images)) == 3
    assert images == [item["b64_json"] for item in again["data"]]
    other = (await post(gateway, {**body, "seed": 8})).json()
    assert other["data"][0]["b64_json"] != images[0]


async def test_quality_changes_reported_usage(gateway: Gateway) -> None:
    tokens = {}
    for quality in ("low", "high"):
        body = {"model": "sketch", "prompt": "moon", "size": "256x256", "quality": quality}
        response = (await post(gateway, body)).json()
        assert response["quality"] == quality
        tokens[quality] = response["usage"]["output_tokens"]
    assert tokens["high"] > tokens["low"]


async def test_url_response_is_a_signed_link_that_downloads(gateway: Gateway) -> None:
    body = {"model": "sketch", "prompt": "a house", "size": "256x256", "response_format": "url"}
    response = await post(gateway, body)
    item = response.json()["data"][0]
    assert "b64_json" not in item
    url = httpx.URL(item["url"])
    assert url.path.startswith("/files/asset_") and {"exp", "sig"} <= set(url.params)
    download = await gateway.client.get(item["url"])
    assert download.status_code == 200
    assert download.headers["content-type"] == "image/png"
    assert Image.open(io.BytesIO(download.content)).size == (256, 256)


async def test_user_and_unknown_fields(gateway: Gateway) -> None:
    body = {
        "model": "sketch",
        "prompt": "sky",
        "size": "256x256",
        "user": "u-1",
        "foo": 1,
        "style": "vivid",
    }
    response = await post(gateway, body)
    assert response.status_code == 200
    assert response.headers["x-imagegate-ignored-params"] == "foo,style"


async def test_moderation_is_accepted(gateway: Gateway) -> None:
    body = {"model": "sketch", "prompt": "sky", "size": "256x256", "moderation": "low"}
    assert (await post(gateway, body)).status_code == 200


async def test_aliases_resolve(gateway: Gateway) -> None:
    body = {"model": "imagegate/sketch", "prompt": "sky", "size": "256x256"}
    assert (await post(gateway, body)).status_code == 200


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"model": "sketch"}, "prompt"),
        ({"model": "sketch", "prompt": ""}, "prompt"),
        ({"model": "sketch", "prompt": "x" * 32001}, "prompt"),
        ({"model": "sketch", "prompt": 5}, "prompt"),
        ({"model": "sketch", "prompt": "x", "n": 0}, "n"),
        ({"model": "sketch", "prompt": "x", "n": 11}, "n"),
        ({"model": "sketch", "prompt": "x", "n": 10000}, "n"),
        ({"model": "sketch", "prompt": "x", "n": "2"}, "n"),
        ({"model": "sketch", "prompt": "x", "size": "100000x10000"}, "size"),
        ({"model": "sketch", "prompt": "x", "size": "1000x1000"}, "size"),
        ({"model": "sketch", "prompt": "x", "quality": "ultra"}, "quality"),
        ({"model": "sketch", "prompt": "x", "quality": "hd"}, "quality"),
        ({"model": "sketch", "prompt": "x", "response_format": "png"}, "response_format"),
        ({"model": "sketch", "prompt": "x", "output_format": "gif"}, "output_format"),
        ({"model": "sketch", "prompt": "x", "output_compression": 101}, "output_compression"),
        ({"model": "sketch", "prompt": "x", "background": "pink"}, "background"),
        ({"model": "sketch", "prompt": "x", "partial_images": 4}, "partial_images"),
        ({"model": "sketch", "prompt": "x", "stream": "yes"}, "stream"),
        ({"model": "sketch", "prompt": "x", "seed": -1}, "seed"),
        ({"model": "sketch", "prompt": "x", "seed": "abc"}, "seed"),
        ({"model": 7, "prompt": "x"}, "model"),
    ],
)
async def test_bad_fields_name_the_param(
    gateway: Gateway, body: dict[str, Any], param: str
) -> None:
    assert_error(await post(gateway, body), 400, param, "invalid_request_error")


async def test_unknown_model_is_404(gateway: Gateway) -> None:
    response = await post(gateway, {"model": "nope", "prompt": "x"})
    assert_error(response, 404, "model", "not_found_error")
    assert response.json()["error"]["code"] == "model_not_found"


async def test_model_without_credentials_is_503_naming_the_env_var(gateway: Gateway) -> None:
    response = await post(gateway, {"model": "gpt-image-1", "prompt": "x"})
    assert_error(response, 503, None, "upstream_error")
    assert "OPENAI_API_KEY" in response.json()["error"]["message"]


@pytest.mark.parametrize(
    "content", [b"", b"{", b"[1, 2]", b'"text"', b"\xff\xfe", b'{"prompt": "a", "n": 1.5}']
)
async def test_malformed_bodies(gateway: Gateway, content: bytes) -> None:
    response = await gateway.client.post(
        ROUTE, content=content, headers={**gateway.auth, "content-type": "application/json"}
    )
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_request_error"


async def test_missing_and_bad_keys_are_401(gateway: Gateway) -> None:
    body = {"model": "sketch", "prompt": "x"}
    missing = await gateway.client.post(ROUTE, json=body)
    assert_error(missing, 401, None, "authentication_error")
    for value in ["Bearer nope", "Bearer " + "a" * 10_000, "Basic abc", "Bearer ' OR 1=1 --"]:
        response = await gateway.client.post(ROUTE, json=body, headers={"Authorization": value})
        assert_error(response, 401, None, "authentication_error")


async def test_key_restricted_to_other_models_is_403(gateway: Gateway) -> None:
    _, secret = await gateway.services.keys.create(models=("gpt-image-*",))
    response = await gateway.client.post(
        ROUTE,
        json={"model": "sketch", "prompt": "x"},
        headers={"Authorization": f"Bearer {secret}"},
    )
    assert_error(response, 403, "model", "permission_error")


async def test_every_request_leaves_a_usage_row(priced_gateway: Gateway) -> None:
    gateway = priced_gateway
    await post(
        gateway, {"model": "sketch", "prompt": "one sun", "size": "256x256", "user": "alice"}
    )
    await post(gateway, {"model": "sketch", "prompt": "x", "n": 11})
    await gateway.services.usage.flush()
    async with gateway.services.engine.connect() as conn:
        rows = (await conn.execute(sa.select(usage))).mappings().all()
    # Both rows may carry the same timestamp: tell them apart by what they say, not by order.
    assert len(rows) == 2
    ok, bad = sorted(rows, key=lambda row: row["status"])
    assert (ok["status"], ok["model"], ok["images"], ok["user"], ok["size"]) == (
        200,
        "sketch",
        1,
        "alice",
        "256x256",
    )
    assert ok["cost_usd"] > 0 and ok["output_tokens"] > 0
    assert (bad["status"], bad["error_code"], bad["images"]) == (400, "invalid_request_error", 0)
    assert "b64" not in str(dict(ok))
