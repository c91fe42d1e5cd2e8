"""Bria wire format: synchronous text-to-image/vector, asynchronous editing actions, the mask
convention, each action's domain operation, and Bria's own required fields."""

from __future__ import annotations

import base64
import io
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import httpx
import pytest
from PIL import Image

from imagegate.fronts.bria.images import alpha_mask
from imagegate.settings import Settings
from tests.api.fronts_kit import (
    bria_mask,
    data_uri,
    decode,
    encode,
    front_settings,
    picture,
    poll,
    poll_sync,
)
from tests.conftest import Gateway, LiveServer

EDIT_BOX = (64, 64, 160, 160)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return front_settings(tmp_path)


async def _status(gateway: Gateway, request_id: str) -> dict[str, Any]:
    async def fetch() -> dict[str, Any]:
        response = await gateway.client.get(f"/bria/{request_id}", headers=gateway.auth)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    return await poll(fetch, lambda body: body["status"] != "IN_PROGRESS")


async def _edit(gateway: Gateway, action: str, **body: Any) -> httpx.Response:
    return await gateway.client.post(
        f"/bria/image/edit/{action}",
        json={"image": data_uri(picture()), **body},
        headers=gateway.auth,
    )


def test_text_to_image_and_an_edit_with_a_plain_http_client(live_server: LiveServer) -> None:
    auth = {"api_token": live_server.key}  # Bria's own header, as its clients send the key
    anonymous = httpx.post(f"{live_server.base_url}/bria/text-to-image", json={"prompt": "x"})
    assert anonymous.status_code == 401 and "api_token" in anonymous.json()["error"]["message"]
    with httpx.Client(base_url=live_server.base_url, headers=auth, timeout=30) as client:
        made = client.post(
            "/bria/text-to-image",
            json={"prompt": "a house under a sun", "num_results": 2, "aspect_ratio": "16:9"},
        )
        assert made.status_code == 200, made.text
        results = made.json()["result"]
        assert len(results) == 2
        for result in results:
            assert result["uuid"] == f"{made.headers['x-request-id']}_{result['seed']}"
            image = decode(httpx.get(result["urls"][0]).content)
            assert image.format == "PNG" and image.size == (1280, 720)  # exactly 16:9
        assert results[1]["seed"] == results[0]["seed"] + 1

        white = (64, 64, 160, 160)
        queued = client.post(
            "/bria/image/edit/gen_fill",
            json={
                "image": data_uri(picture()),
                "mask": data_uri(bria_mask((256, 256), white)),
                "prompt": "a red heart",
                "seed": 11,
            },
        )
        assert queued.status_code == 202, queued.text
        request_id = queued.json()["request_id"]
        assert queued.json()["status_url"] == f"{live_server.base_url}/bria/{request_id}"

        def fetch() -> dict[str, Any]:
            body: dict[str, Any] = client.get(queued.json()["status_url"]).json()
            return body

        done = poll_sync(fetch, lambda body: body["status"] != "IN_PROGRESS")
    assert done["status"] == "COMPLETED" and done["request_id"] == request_id
    assert done["result"]["seed"] == 11 and done["result"]["refined_prompt"] == "a red heart"
    image = decode(httpx.get(done["result"]["image_url"]).content)
    assert image.format == "PNG" and image.size == (256, 256)


async def test_bria_masks_become_alpha_masks() -> None:
    converted = decode(alpha_mask(bria_mask((8, 8), (0, 0, 4, 8))))
    assert converted.mode == "RGBA"
    alpha = converted.getchannel("A")
    assert alpha.getpixel((1, 1)) == 0  # white in Bria's mask: the area to change
    assert alpha.getpixel((6, 1)) == 255  # black: kept


@pytest.mark.parametrize(
    ("action", "body", "operation", "checks"),
    [
        ("erase", {"mask": "M"}, "erase", {"mask": True}),
        ("gen_fill", {"mask": "M", "prompt": "a cat"}, "edit", {"prompt": "a cat", "mask": True}),
        ("expand", {"aspect_ratio": "16:9"}, "outpaint", {"padding": [99, 0, 100, 0]}),
        (
            "expand",
            {"canvas_size": [512, 384], "original_image_location": [0, 64]},
            "outpaint",
            {"padding": [0, 64, 256, 64]},
        ),
        ("expand", {"mask": "K"}, "outpaint", {"padding": [64, 64, 96, 96]}),
        ("enhance", {}, "enhance", {}),
        ("increase_resolution", {"desired_increase": 4}, "upscale", {"scale": 4.0, "width": 1024}),
        ("increase_resolution", {}, "upscale", {"scale": 2.0}),
        ("replace_background", {"prompt": "a beach"}, "replace_background", {"prompt": "a beach"}),
        ("remove_background", {}, "remove_background", {"background": "transparent"}),
    ],
)
async def test_each_action_reaches_its_operation(
    gateway: Gateway, action: str, body: dict[str, Any], operation: str, checks: dict[str, Any]
) -> None:
    masks = {"M": _mask(edit=EDIT_BOX), "K": _mask(keep=EDIT_BOX)}
    body = {name: masks[value] if name == "mask" else value for name, value in body.items()}
    response = await _edit(gateway, action, model="toolbox", **body)
    assert response.status_code == 202, response.text
    task = await gateway.services.tasks.get(response.json()["request_id"], None)
    request = task.request
    assert request["operation"] == operation and request["model"] == "toolbox"
    for name, expected in checks.items():
        if name == "mask":
            assert request["mask"] is not None and request["mask"]["has_alpha"]
        else:
            assert request[name] == expected, (name, request[name])


def _mask(
    *, edit: tuple[int, int, int, int] | None = None, keep: tuple[int, int, int, int] | None = None
) -> str:
    """A 256×256 Bria mask as a data URI: white (edit) in ``edit``, or everywhere but ``keep``."""
    if edit is not None:
        return data_uri(bria_mask((256, 256), edit))
    image = Image.new("L", (256, 256), 255)
    image.paste(0, keep)
    return data_uri(encode(image))


async def test_expand_by_mask_crops_to_what_is_kept(gateway: Gateway) -> None:
    response = await _edit(gateway, "expand", model="toolbox", mask=_mask(keep=EDIT_BOX))
    task = await gateway.services.tasks.get(response.json()["request_id"], None)
    image = task.request["images"][0]
    assert (image["width"], image["height"]) == (96, 96)


async def test_fields_an_action_does_not_use_are_reported(gateway: Gateway) -> None:
    mask = data_uri(bria_mask((256, 256), (0, 0, 10, 10)))
    response = await _edit(
        gateway, "erase", mask=mask, prompt="unused", desired_increase=2, negative_prompt="x"
    )
    assert response.status_code == 202, response.text
    ignored = response.headers["x-imagegate-ignored-params"].split(",")
    assert ignored == ["desired_increase", "negative_prompt", "prompt"]


@pytest.mark.parametrize(
    ("action", "body", "status", "param"),
    [
        ("erase", {}, 400, "mask"),
        ("gen_fill", {"mask": "M"}, 400, "prompt"),
        ("gen_fill", {"mask": "M", "prompt": "  "}, 400, "prompt"),
        ("replace_background", {}, 400, "prompt"),
        ("expand", {}, 400, "aspect_ratio"),
        ("expand", {"canvas_size": [100, 100]}, 400, "canvas_size"),
        (
            "expand",
            {"canvas_size": [512, 512], "original_image_location": [-1, 0]},
            400,
            "original_image_location",
        ),
        ("increase_resolution", {"desired_increase": 3}, 400, "desired_increase"),
        ("sharpen", {}, 404, "action"),
        ("erase", {"mask": "M", "num_results": 5}, 400, "num_results"),
    ],
)
async def test_bad_requests_name_the_field(
    gateway: Gateway, action: str, body: dict[str, Any], status: int, param: str
) -> None:
    body = {name: _mask(edit=EDIT_BOX) if value == "M" else value for name, value in body.items()}
    response = await _edit(gateway, action, model="toolbox", **body)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["param"] == param
    assert error["message"].endswith(f"(request id: {response.headers['x-request-id']})")


async def test_a_model_without_the_feature_is_400_naming_it(gateway: Gateway) -> None:
    for action in ("increase_resolution", "remove_background", "expand"):
        response = await _edit(gateway, action, model="gpt-image-1", aspect_ratio="1:1")
        assert response.status_code == 400, response.text
        assert response.json()["error"]["param"] == "model"
    vector = await gateway.client.post(
        "/bria/text-to-vector", json={"prompt": "x", "model": "dall-e-3"}, headers=gateway.auth
    )
    assert vector.status_code == 400 and vector.json()["error"]["param"] == "model"


async def test_images_keep_to_bria_limits(gateway: Gateway) -> None:
    gif = Image.new("RGB", (16, 16), (1, 2, 3))
    buffer = io.BytesIO()
    gif.save(buffer, "GIF")
    wrong = await gateway.client.post(
        "/bria/image/edit/enhance",
        json={"image": data_uri(buffer.getvalue(), "image/gif"), "model": "toolbox"},
        headers=gateway.auth,
    )
    assert wrong.status_code == 400 and wrong.json()["error"]["param"] == "image"
    huge = "data:image/png;base64," + base64.b64encode(b"\0" * (12 * 1024 * 1024 + 3)).decode()
    too_big = await gateway.client.post(
        "/bria/image/edit/enhance", json={"image": huge, "model": "toolbox"}, headers=gateway.auth
    )
    assert too_big.status_code == 413 and too_big.json()["error"]["param"] == "image"


async def test_status_of_unknown_or_foreign_requests_is_404(gateway: Gateway) -> None:
    mask = data_uri(bria_mask((256, 256), (0, 0, 10, 10)))
    request_id = (await _edit(gateway, "erase", mask=mask)).json()["request_id"]
    _, other = await gateway.services.keys.create(name="other")
    foreign = await gateway.client.get(
        f"/bria/{request_id}", headers={"Authorization": f"Bearer {other}"}
    )
    unknown = await gateway.client.get("/bria/no-such-request", headers=gateway.auth)
    assert foreign.status_code == 404 and unknown.status_code == 404
    assert unknown.json()["error"]["type"] == "not_found_error"


async def test_text_to_image_reports_what_the_model_cannot_take(gateway: Gateway) -> None:
    response = await gateway.client.post(
        "/bria/text-to-image",
        json={"prompt": "a tree", "seed": 5, "medium": "art", "steps_num": 30, "sync": True},
        headers=gateway.auth,
    )
    assert response.status_code == 200, response.text
    assert response.headers["x-imagegate-ignored-params"] == "medium,steps_num"
    assert response.json()["result"][0]["seed"] == 5


async def test_erase_produces_an_image(gateway: Gateway) -> None:
    mask = data_uri(bria_mask((256, 256), (64, 64, 160, 160)))
    done = await _status(gateway, (await _edit(gateway, "erase", mask=mask)).json()["request_id"])
    assert done["status"] == "COMPLETED", done
    image = decode((await gateway.client.get(done["result"]["image_url"])).content)
    assert image.size == (256, 256)


async def test_remove_background_gives_transparent_corners(gateway: Gateway) -> None:
    queued = await _edit(gateway, "remove_background")  # the default model: sketch
    done = await _status(gateway, queued.json()["request_id"])
    assert done["status"] == "COMPLETED", done
    image = decode((await gateway.client.get(done["result"]["image_url"])).content)
    assert image.format == "PNG" and image.mode == "RGBA"
    alpha = image.getchannel("A")
    assert alpha.getpixel((0, 0)) == 0 and alpha.getpixel((255, 255)) == 0


@pytest.mark.parametrize(
    ("action", "body", "size"),
    [
        ("increase_resolution", {"desired_increase": 2}, (512, 512)),
        ("enhance", {}, (256, 256)),
        ("expand", {"aspect_ratio": "16:9"}, (1280, 720)),
        ("replace_background", {"prompt": "a blue sky"}, (256, 256)),
    ],
)
async def test_the_renderer_tools_produce_images(
    gateway: Gateway,
    action: str,
    body: dict[str, Any],
    size: tuple[int, int],
) -> None:
    queued = await _edit(gateway, action, **body)
    done = await _status(gateway, queued.json()["request_id"])
    assert done["status"] == "COMPLETED", done
    image = decode((await gateway.client.get(done["result"]["image_url"])).content)
    assert image.format == "PNG" and image.size == size


async def test_text_to_vector_answers_svg(gateway: Gateway) -> None:
    response = await gateway.client.post(
        "/bria/text-to-vector",
        json={"prompt": "a yellow star"},
        headers=gateway.auth,
    )
    assert response.status_code == 200, response.text
    download = await gateway.client.get(response.json()["result"][0]["urls"][0])
    assert download.headers["content-type"].startswith("image/svg+xml")
    root = ElementTree.fromstring(download.content)
    assert root.tag.endswith("svg")


async def test_an_exact_ratio_on_the_built_in_renderer(gateway: Gateway) -> None:
    made = await gateway.client.post(
        "/bria/text-to-image", json={"prompt": "x", "aspect_ratio": "4:3"}, headers=gateway.auth
    )
    assert made.status_code == 200, made.text
    image = decode((await gateway.client.get(made.json()["result"][0]["urls"][0])).content)
    assert image.width * 3 == image.height * 4
