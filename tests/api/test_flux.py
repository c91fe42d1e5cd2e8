"""Flux wire format: create → poll get_result → download, sizes, ignored fields, webhooks."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from imagegate.core.catalog import load_catalog
from imagegate.core.params import validate_generation
from imagegate.fronts.common.sizes import size_for_ratio
from imagegate.fronts.common.tasks import pick_seed
from imagegate.fronts.flux.wire import FluxBody, flux_params
from imagegate.providers.registry import ProviderRegistry
from imagegate.settings import Settings
from tests.api.fronts_kit import data_uri, decode, front_settings, picture, poll, poll_sync
from tests.conftest import Gateway, LiveServer
from tests.receiver import receiver


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return front_settings(tmp_path)


async def _ready(gateway: Gateway, task_id: str, auth: dict[str, str] | None = None) -> Any:
    async def fetch() -> dict[str, Any]:
        response = await gateway.client.get(
            "/flux/v1/get_result", params={"id": task_id}, headers=auth or gateway.auth
        )
        assert response.status_code == 200
        body: dict[str, Any] = response.json()
        return body

    return await poll(fetch, lambda body: body["status"] != "Pending")


def test_documented_flow_with_a_plain_http_client(live_server: LiveServer) -> None:
    auth = {"Authorization": f"Bearer {live_server.key}"}
    with httpx.Client(base_url=live_server.base_url, headers=auth, timeout=30) as client:
        created = client.post(
            "/flux/v1/sketch",
            json={
                "prompt": "a red sun over blue sea",
                "width": 512,
                "height": 512,
                "seed": 42,
                "output_format": "jpeg",
            },
        )
        assert created.status_code == 200, created.text
        body = created.json()
        assert set(body) == {"id", "polling_url"}
        assert body["polling_url"] == f"{live_server.base_url}/flux/v1/get_result?id={body['id']}"

        def fetch() -> dict[str, Any]:
            result: dict[str, Any] = client.get(body["polling_url"]).json()
            return result

        done = poll_sync(fetch, lambda result: result["status"] != "Pending")
    assert done["status"] == "Ready" and done["id"] == body["id"]
    assert set(done) >= {"id", "status", "result", "progress"} and done["progress"] == 1.0
    result = done["result"]
    assert result["prompt"] == "a red sun over blue sea" and result["seed"] == 42
    assert result["start_time"] <= result["end_time"] and result["duration"] >= 0
    download = httpx.get(result["sample"])  # the signed URL is the credential
    assert download.status_code == 200 and download.headers["content-type"] == "image/jpeg"
    image = decode(download.content)
    assert image.format == "JPEG" and image.size == (512, 512)


async def test_fields_the_model_cannot_take_are_listed(gateway: Gateway) -> None:
    response = await gateway.client.post(
        "/flux/v1/sketch",
        json={
            "prompt": "three stars",
            "steps": 20,
            "guidance": 3.5,
            "safety_tolerance": 2,
            "prompt_upsampling": True,
            "raw": True,
            "interval": 2,
        },
        headers=gateway.auth,
    )
    assert response.status_code == 200, response.text
    ignored = response.headers["x-imagegate-ignored-params"].split(",")
    expected = ["guidance", "interval", "prompt_upsampling", "raw", "safety_tolerance", "steps"]
    assert ignored == expected
    assert (await _ready(gateway, response.json()["id"]))["status"] == "Ready"


async def test_without_edit_feature_image_prompt_is_dropped_and_seedless_models_drop_seed(
    gateway: Gateway,
) -> None:
    response = await gateway.client.post(
        "/flux/v1/plain",
        json={"prompt": "a moon", "image_prompt": data_uri(picture()), "width": 640},
        headers=gateway.auth,
    )
    assert response.status_code == 200, response.text
    assert response.headers["x-imagegate-ignored-params"] == "image_prompt"
    done = await _ready(gateway, response.json()["id"])
    image = decode((await gateway.client.get(done["result"]["sample"])).content)
    assert image.size == (640, 1024)  # the missing side defaults to 1024
    assert isinstance(done["result"]["seed"], int)  # picked, so the result can be repeated


@pytest.mark.parametrize(
    ("model", "body", "param"),
    [
        ("sketch", {"width": 1000}, "width"),
        ("sketch", {"height": 31}, "height"),
        ("flux-dev", {"width": 2048}, "width"),
        ("plain", {"width": 1024, "height": 1472}, "height"),
        ("sketch", {"width": 2080, "height": 768}, "width"),
        ("sketch", {"safety_tolerance": 7}, "safety_tolerance"),
        ("sketch", {"steps": -1}, "steps"),
        ("sketch", {"output_format": "webp"}, "output_format"),
        ("sketch", {"aspect_ratio": "wide"}, "aspect_ratio"),
        ("sketch", {"webhook_url": "ftp://example.com/hook"}, "webhook_url"),
    ],
)
async def test_bad_fields_are_400_naming_the_field(
    gateway: Gateway, model: str, body: dict[str, Any], param: str
) -> None:
    response = await gateway.client.post(
        f"/flux/v1/{model}", json={"prompt": "x", **body}, headers=gateway.auth
    )
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["param"] == param and error["type"] == "invalid_request_error"
    assert error["message"].endswith(f"(request id: {response.headers['x-request-id']})")


async def test_input_image_is_a_kontext_style_edit(gateway: Gateway) -> None:
    response = await gateway.client.post(
        "/flux/v1/imagegate/sketch",
        json={"prompt": "add a red heart", "input_image": data_uri(picture((512, 512)))},
        headers=gateway.auth,
    )
    assert response.status_code == 200, response.text
    task_id = response.json()["id"]
    task = await gateway.services.tasks.get(task_id, None)
    assert task.request["operation"] == "edit" and len(task.request["images"]) == 1
    done = await _ready(gateway, task_id)
    image = decode((await gateway.client.get(done["result"]["sample"])).content)
    assert image.size == (512, 512)


async def test_an_edit_on_a_model_without_the_feature_names_the_model(gateway: Gateway) -> None:
    response = await gateway.client.post(
        "/flux/v1/plain",
        json={"prompt": "x", "input_image": data_uri(picture())},
        headers=gateway.auth,
    )
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "model"


async def test_aspect_ratio_picks_the_nearest_size(gateway: Gateway) -> None:
    response = await gateway.client.post(
        "/flux/v1/toolbox", json={"prompt": "x", "aspect_ratio": "16:9"}, headers=gateway.auth
    )
    done = await _ready(gateway, response.json()["id"])
    image = decode((await gateway.client.get(done["result"]["sample"])).content)
    assert image.size == (1792, 1024) and image.format == "JPEG"  # Flux's default format


@pytest.mark.parametrize(
    ("body", "size"),
    [
        ({"width": 512, "height": 384}, (512, 384)),
        ({"aspect_ratio": "16:9"}, (1280, 720)),
        ({"aspect_ratio": "4:3"}, (1152, 864)),
    ],
)
async def test_the_built_in_renderer_makes_exactly_the_size_asked(
    gateway: Gateway, body: dict[str, Any], size: tuple[int, int]
) -> None:
    response = await gateway.client.post(
        "/flux/v1/sketch", json={"prompt": "x", **body}, headers=gateway.auth
    )
    assert response.status_code == 200, response.text
    done = await _ready(gateway, response.json()["id"])
    image = decode((await gateway.client.get(done["result"]["sample"])).content)
    assert image.size == size


def test_ratio_sizes_on_free_range_models() -> None:
    flux_dev = load_catalog(ProviderRegistry()).resolve("flux-dev")
    assert flux_dev is not None
    assert size_for_ratio(flux_dev, 16, 9) == "1376x768"
    assert size_for_ratio(flux_dev, 1, 1) == "1024x1024"
    assert size_for_ratio(flux_dev, 21, 9) == "1440x608"  # the longest side stays within 1440


async def test_unknown_model_is_404(gateway: Gateway) -> None:
    response = await gateway.client.post(
        "/flux/v1/no-such-model", json={"prompt": "x"}, headers=gateway.auth
    )
    assert response.status_code == 404 and response.json()["error"]["param"] == "model"


async def test_flux_models_are_in_the_catalogue_and_need_bfl(gateway: Gateway) -> None:
    body = (await gateway.client.get("/api/models", params={"all": "true", "q": "flux"})).json()
    records = {record["id"]: record for record in body["data"]}
    assert {"flux-pro-1.1", "flux-dev", "flux-kontext-pro"} <= set(records)
    assert not any(record["available"] for record in records.values())
    response = await gateway.client.post(
        "/flux/v1/flux-pro-1.1", json={"prompt": "x", "width": 1440}, headers=gateway.auth
    )
    assert response.status_code == 503 and "BFL_API_KEY" in response.json()["error"]["message"]


async def test_unknown_and_foreign_ids_are_task_not_found(gateway: Gateway) -> None:
    response = await gateway.client.post(
        "/flux/v1/sketch", json={"prompt": "x"}, headers=gateway.auth
    )
    task_id = response.json()["id"]
    _, other = await gateway.services.keys.create(name="other")
    for ask, auth in [("nope", gateway.auth), (task_id, {"Authorization": f"Bearer {other}"})]:
        answer = await gateway.client.get("/flux/v1/get_result", params={"id": ask}, headers=auth)
        assert answer.status_code == 200
        assert answer.json() == {
            "id": ask,
            "status": "Task not found",
            "result": None,
            "progress": None,
        }
    missing = await gateway.client.get("/flux/v1/get_result", headers=gateway.auth)
    assert missing.status_code == 400 and missing.json()["error"]["param"] == "id"
    too_long = await gateway.client.get(
        "/flux/v1/get_result", params={"id": "x" * 65}, headers=gateway.auth
    )
    assert too_long.status_code == 400 and "64 characters" in too_long.json()["error"]["message"]


async def test_get_result_answers_for_replicate_ids(gateway: Gateway) -> None:
    created = await gateway.client.post(
        "/replicate/v1/models/imagegate/sketch/predictions",
        json={"input": {"prompt": "a house", "seed": 9}},
        headers={**gateway.auth, "Prefer": "wait=20"},
    )
    prediction = created.json()
    assert prediction["status"] == "succeeded"
    done = await _ready(gateway, prediction["id"])
    assert done["status"] == "Ready" and done["result"]["seed"] == 9
    download = await gateway.client.get(done["result"]["sample"])
    assert download.status_code == 200 and decode(download.content).format == "PNG"


async def test_webhook_is_signed_with_the_given_secret_and_sent_once_finished(
    gateway: Gateway,
) -> None:
    async with receiver() as box:
        response = await gateway.client.post(
            "/flux/v1/sketch",
            json={"prompt": "x", "webhook_url": box.url, "webhook_secret": "flux-secret"},
            headers=gateway.auth,
        )
        task_id = response.json()["id"]
        await box.wait_for(1)
        await _ready(gateway, task_id)
        await gateway.services.webhooks.deliver_due()
    assert len(box.received) == 1  # the reference only reports the finished task
    delivery = box.received[0]
    assert delivery.signature_valid(b"flux-secret")
    payload = httpx.Response(200, content=delivery.body).json()
    assert payload["id"] == task_id and payload["status"] == "Ready"
    assert payload["result"]["sample"].startswith("http://gateway.test/files/")


def test_a_flux_request_for_gpt_image_1_drops_what_it_cannot_take() -> None:
    entry = load_catalog(ProviderRegistry()).resolve("gpt-image-1")
    assert entry is not None
    body = FluxBody(prompt="x", seed=3, steps=20, guidance=3.0, width=1536, height=1024, raw=True)
    params, dropped = flux_params(body, entry, pick_seed(entry, body.seed))
    validated = validate_generation(entry, params)
    assert dropped == ["seed"] and validated.ignored == ("guidance", "raw", "steps")
    assert validated.request.size == "1536x1024" and validated.request.output_format == "jpeg"


async def test_a_preset_only_model_gets_the_nearest_preset_and_says_so(gateway: Gateway) -> None:
    response = await gateway.client.post(
        "/flux/v1/toolbox", json={"prompt": "x", "width": 640, "height": 384}, headers=gateway.auth
    )
    assert response.status_code == 200, response.text
    assert response.headers["x-imagegate-adjusted-params"] == "size=640x384->1792x1024"
    done = await _ready(gateway, response.json()["id"])
    image = decode((await gateway.client.get(done["result"]["sample"])).content)
    assert image.size == (1792, 1024)
