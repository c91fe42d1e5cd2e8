"""``POST /v1/images/edits`` and ``/v1/images/variations`` through the input pipeline."""

from __future__ import annotations

import base64
import io
from typing import Any

import httpx
import pytest
from PIL import Image, ImageChops

from tests.api.images import bomb_png, mask, png
from tests.conftest import Gateway

EDITS = "/v1/images/edits"
VARIATIONS = "/v1/images/variations"


def decode(item: dict[str, Any]) -> Image.Image:
    return Image.open(io.BytesIO(base64.b64decode(item["b64_json"])))


def data_uri(data: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(data).decode()


async def edit(gateway: Gateway, files: list[tuple[str, Any]], **data: str) -> httpx.Response:
    fields = {"model": "sketch", "prompt": "a red circle", **data}
    return await gateway.client.post(EDITS, files=files, data=fields, headers=gateway.auth)


async def test_masked_edit_changes_only_the_masked_area(gateway: Gateway) -> None:
    source = png((512, 512))
    hole = (128, 128, 384, 384)
    response = await edit(
        gateway,
        [
            ("image", ("photo.png", source, "image/png")),
            ("mask", ("mask.png", mask((512, 512), hole), "image/png")),
        ],
    )
    assert response.status_code == 200, response.text
    result = decode(response.json()["data"][0]).convert("RGB")
    original = Image.open(io.BytesIO(source)).convert("RGB")
    assert result.size == (512, 512)
    difference = ImageChops.difference(result, original)
    outside = difference.copy()
    outside.paste((0, 0, 0), hole)
    assert outside.getbbox() is None, "pixels outside the mask changed"
    inside = difference.crop(hole)
    assert inside.getbbox() is not None, "nothing changed inside the mask"


async def test_edit_without_mask_and_several_images(gateway: Gateway) -> None:
    files = [
        ("image[]", ("a.png", png((256, 256)), "image/png")),
        ("image[]", ("b.png", png((256, 256), (200, 30, 30)), "image/png")),
        ("image[]", ("c.png", png((300, 200), (20, 160, 40)), "image/png")),
    ]
    response = await edit(gateway, files, input_fidelity="high", n="2", size="1024x1024")
    assert response.status_code == 200, response.text
    data = response.json()["data"]
    assert len(data) == 2 and decode(data[0]).size == (1024, 1024)
    assert response.json()["usage"]["input_tokens_details"]["image_tokens"] > 0


async def test_auto_size_follows_the_input_aspect(gateway: Gateway) -> None:
    response = await edit(gateway, [("image", ("wide.png", png((600, 400)), "image/png"))])
    assert response.json()["size"] == "1536x1024"


async def test_json_form_with_data_uri_and_file_id(gateway: Gateway) -> None:
    uploaded = await gateway.client.post(
        "/v1/files",
        files={"file": ("m.png", mask((256, 256), (0, 0, 128, 128)), "image/png")},
        data={"purpose": "vision"},
        headers=gateway.auth,
    )
    body = {
        "model": "sketch",
        "prompt": "a yellow sun",
        "images": [{"image_url": data_uri(png((256, 256)))}],
        "mask": {"file_id": uploaded.json()["id"]},
        "response_format": "url",
    }
    response = await gateway.client.post(EDITS, json=body, headers=gateway.auth)
    assert response.status_code == 200, response.text
    download = await gateway.client.get(response.json()["data"][0]["url"])
    assert Image.open(io.BytesIO(download.content)).size == (256, 256)


async def test_streaming_edit_events(gateway: Gateway) -> None:
    response = await edit(
        gateway,
        [("image", ("a.png", png((256, 256)), "image/png"))],
        stream="true",
        partial_images="1",
    )
    assert response.status_code == 200
    events = [line for line in response.text.splitlines() if line.startswith("event: ")]
    assert events == ["event: image_edit.partial_image", "event: image_edit.completed"]


async def test_variations(gateway: Gateway) -> None:
    response = await gateway.client.post(
        VARIATIONS,
        files={"image": ("a.png", png((256, 256)), "image/png")},
        data={"model": "sketch", "n": "3", "size": "256x256"},
        headers=gateway.auth,
    )
    assert response.status_code == 200, response.text
    images = [item["b64_json"] for item in response.json()["data"]]
    assert len(set(images)) == 3


async def test_variation_needs_a_model_with_the_feature(gateway: Gateway) -> None:
    response = await gateway.client.post(
        VARIATIONS,
        files={"image": ("a.png", png((256, 256)), "image/png")},
        data={"model": "dall-e-3"},
        headers=gateway.auth,
    )
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "model"


def _calls(gateway: Gateway, monkeypatch: pytest.MonkeyPatch) -> list[object]:
    calls: list[object] = []
    provider = gateway.services.images._registry.get("local")
    assert provider is not None
    original = provider.generate

    async def counting(*args: Any, **kwargs: Any) -> Any:
        calls.append(args)
        return await original(*args, **kwargs)

    monkeypatch.setattr(provider, "generate", counting)
    return calls


def _tiff() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buffer, "TIFF")
    return buffer.getvalue()


BAD_INPUTS: list[tuple[str, list[tuple[str, Any]], int, str]] = [
    ("bomb", [("image", ("b.png", bomb_png(), "image/png"))], 400, "image"),
    ("truncated", [("image", ("t.png", png((256, 256))[:300], "image/png"))], 400, "image"),
    ("not an image", [("image", ("x.png", b"hello, I am text" * 10, "image/png"))], 400, "image"),
    (
        "svg",
        [("image", ("x.svg", b'<svg xmlns="http://www.w3.org/2000/svg"/>', "image/png"))],
        400,
        "image",
    ),
    ("tiff", [("image", ("x.tiff", _tiff(), "image/tiff"))], 400, "image"),
    (
        "mask size",
        [
            ("image", ("a.png", png((256, 256)), "image/png")),
            ("mask", ("m.png", mask((128, 128), (0, 0, 8, 8)), "image/png")),
        ],
        400,
        "mask",
    ),
    (
        "mask without alpha",
        [
            ("image", ("a.png", png((256, 256)), "image/png")),
            ("mask", ("m.png", png((256, 256)), "image/png")),
        ],
        400,
        "mask",
    ),
    (
        "17 images",
        [("image[]", (f"{i}.png", png((16, 16)), "image/png")) for i in range(17)],
        400,
        "image",
    ),
]


@pytest.mark.parametrize(
    ("name", "files", "status", "param"), BAD_INPUTS, ids=[c[0] for c in BAD_INPUTS]
)
async def test_bad_inputs_are_refused_before_the_upstream(
    gateway: Gateway,
    monkeypatch: pytest.MonkeyPatch,
    name: str,
    files: list[tuple[str, Any]],
    status: int,
    param: str,
) -> None:
    calls = _calls(gateway, monkeypatch)
    response = await edit(gateway, files)
    assert response.status_code == status, (name, response.text)
    error = response.json()["error"]
    assert error["param"] is not None and error["param"].startswith(param), error
    assert calls == []


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/a.png",
        "http://169.254.169.254/latest/meta-data",
        "http://[::ffff:127.0.0.1]/a.png",
        "file:///etc/passwd",
        "gopher://127.0.0.1:70/",
    ],
)
async def test_hostile_urls_are_refused(
    gateway: Gateway, monkeypatch: pytest.MonkeyPatch, url: str
) -> None:
    calls = _calls(gateway, monkeypatch)
    body = {"model": "sketch", "prompt": "x", "images": [{"image_url": url}]}
    response = await gateway.client.post(EDITS, json=body, headers=gateway.auth)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["param"] == "images[0].image_url"
    assert calls == []


async def test_image_over_the_models_byte_cap_is_413(gateway: Gateway, tmp_path: Any) -> None:
    from imagegate.core.catalog import load_catalog

    config = tmp_path / "config.toml"
    config.write_text('[[models]]\nid = "sketch"\n[models.edit]\nmax_image_bytes = 2000\n')
    services = gateway.services
    services.images.catalog = load_catalog(services.images._registry, config)
    response = await edit(
        gateway, [("image", ("a.png", png((512, 512)) + b"\0" * 5000, "image/png"))]
    )
    assert response.status_code == 413, response.text
    assert response.json()["error"]["param"] == "image"


async def test_other_keys_file_ids_are_not_found(gateway: Gateway) -> None:
    _, other = await gateway.services.keys.create(name="other")
    uploaded = await gateway.client.post(
        "/v1/files",
        files={"file": ("a.png", png((64, 64)), "image/png")},
        data={"purpose": "vision"},
        headers={"Authorization": f"Bearer {other}"},
    )
    body = {"model": "sketch", "prompt": "x", "images": [{"file_id": uploaded.json()["id"]}]}
    response = await gateway.client.post(EDITS, json=body, headers=gateway.auth)
    assert response.status_code == 404
    assert response.json()["error"]["param"] == "images[0].file_id"


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"model": "sketch", "prompt": "x", "images": []}, "images"),
        ({"model": "sketch", "prompt": "x", "images": [{}]}, "images.0"),
        (
            {"model": "sketch", "prompt": "x", "images": [{"image_url": "a", "file_id": "b"}]},
            "images.0",
        ),
        ({"model": "sketch", "images": [{"image_url": "data:,"}]}, "prompt"),
    ],
)
async def test_bad_json_edit_bodies(gateway: Gateway, body: dict[str, Any], param: str) -> None:
    response = await gateway.client.post(EDITS, json=body, headers=gateway.auth)
    assert response.status_code == 400
    assert response.json()["error"]["param"] == param


async def test_multipart_edit_without_image(gateway: Gateway) -> None:
    response = await gateway.client.post(
        EDITS, files={"other": ("a.txt", b"x")}, data={"prompt": "x"}, headers=gateway.auth
    )
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "image"
