"""Replicate wire format: predictions created, polled, waited for, cancelled, and reported by
webhook per ``webhook_events_filter``."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from imagegate.core.catalog import load_catalog
from imagegate.core.params import validate_generation
from imagegate.core.webhooks import signing_key
from imagegate.fronts.common.tasks import pick_seed
from imagegate.fronts.replicate.wire import replicate_params
from imagegate.providers.registry import ProviderRegistry
from imagegate.settings import Settings
from tests.api.fronts_kit import data_uri, decode, front_settings, picture, poll, poll_sync
from tests.conftest import Gateway, LiveServer
from tests.receiver import receiver

CREATE = "/replicate/v1/models/imagegate/sketch/predictions"
ISO = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z")
PREDICTION_KEYS = {
    "id",
    "model",
    "version",
    "input",
    "logs",
    "output",
    "error",
    "status",
    "created_at",
    "started_at",
    "completed_at",
    "urls",
    "metrics",
    "data_removed",
    "source",
}


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return front_settings(tmp_path)


async def _finished(gateway: Gateway, prediction_id: str) -> dict[str, Any]:
    async def fetch() -> dict[str, Any]:
        response = await gateway.client.get(
            f"/replicate/v1/predictions/{prediction_id}", headers=gateway.auth
        )
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    return await poll(fetch, lambda body: body["status"] in ("succeeded", "failed", "canceled"))


def test_documented_flow_with_a_plain_http_client(live_server: LiveServer) -> None:
    auth = {"Authorization": f"Bearer {live_server.key}"}
    with httpx.Client(base_url=live_server.base_url, headers=auth, timeout=30) as client:
        created = client.post(
            CREATE,
            json={"input": {"prompt": "green trees", "output_format": "webp", "num_outputs": 2}},
        )
        assert created.status_code == 201, created.text
        prediction = created.json()
        assert set(prediction) == PREDICTION_KEYS
        assert prediction["status"] in ("starting", "processing", "succeeded")
        get_url = f"{live_server.base_url}/replicate/v1/predictions/{prediction['id']}"
        assert prediction["urls"] == {"get": get_url, "cancel": get_url + "/cancel"}

        def fetch() -> dict[str, Any]:
            body: dict[str, Any] = client.get(prediction["urls"]["get"]).json()
            return body

        done = poll_sync(fetch, lambda body: body["status"] == "succeeded")
    assert done["model"] == "imagegate/sketch" and done["version"] == "hidden"
    assert done["source"] == "api" and done["data_removed"] is False and done["error"] is None
    assert all(ISO.fullmatch(done[name]) for name in ("created_at", "started_at", "completed_at"))
    assert done["metrics"]["image_count"] == 2 and done["metrics"]["predict_time"] >= 0
    assert done["input"] == {"prompt": "green trees", "output_format": "webp", "num_outputs": 2}
    assert len(done["output"]) == 2
    for url in done["output"]:
        image = decode(httpx.get(url).content)
        assert image.format == "WEBP" and image.size == (1024, 1024)


async def test_prefer_wait_answers_the_finished_prediction(gateway: Gateway) -> None:
    response = await gateway.client.post(
        CREATE,
        json={"input": {"prompt": "a sun", "aspect_ratio": "16:9", "output_format": "jpg"}},
        headers={**gateway.auth, "Prefer": "wait"},
    )
    assert response.status_code == 201
    prediction = response.json()
    assert prediction["status"] == "succeeded" and prediction["completed_at"]
    image = decode((await gateway.client.get(prediction["output"][0])).content)
    assert image.format == "JPEG" and image.size == (1280, 720)


@pytest.mark.parametrize("prefer", ["wait=0", "wait=61", "wait=soon"])
async def test_bad_wait_is_400(gateway: Gateway, prefer: str) -> None:
    response = await gateway.client.post(
        CREATE, json={"input": {"prompt": "x"}}, headers={**gateway.auth, "Prefer": prefer}
    )
    assert response.status_code == 400 and "Prefer" in response.json()["detail"]


async def test_inputs_map_and_unknown_ones_are_reported(gateway: Gateway) -> None:
    response = await gateway.client.post(
        CREATE,
        json={
            "input": {
                "prompt": "a red square",
                "width": 512,
                "height": 512,
                "seed": 3,
                "output_quality": 80,
                "go_fast": True,
                "num_inference_steps": 4,
            }
        },
        headers={**gateway.auth, "Prefer": "wait=30"},
    )
    assert response.status_code == 201, response.text
    ignored = response.headers["x-imagegate-ignored-params"].split(",")
    assert ignored == ["go_fast", "num_inference_steps", "output_quality"]
    prediction = response.json()
    assert "go_fast" in prediction["logs"]
    task = await gateway.services.tasks.get(prediction["id"], None)
    assert (task.request["width"], task.request["height"]) == (512, 512)
    assert task.request["extras"] == {"seed": 3}


async def test_input_image_makes_an_edit(gateway: Gateway) -> None:
    big = data_uri(picture((512, 512)))
    response = await gateway.client.post(
        CREATE,
        json={"input": {"prompt": "add a yellow star", "input_image": big}},
        headers={**gateway.auth, "Prefer": "wait=30"},
    )
    prediction = response.json()
    assert prediction["status"] == "succeeded", prediction
    assert prediction["input"]["input_image"].startswith("<")  # echoed as a digest, not stored
    task = await gateway.services.tasks.get(prediction["id"], None)
    assert task.request["operation"] == "edit"


async def test_flux_aliases_resolve(gateway: Gateway) -> None:
    response = await gateway.client.post(
        "/replicate/v1/models/black-forest-labs/flux-schnell/predictions",
        json={"input": {"prompt": "x", "num_outputs": 4}},
        headers=gateway.auth,
    )
    assert response.status_code == 503  # known model, no Replicate adapter configured yet
    assert "REPLICATE_API_TOKEN" in response.json()["detail"]


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"input": {"prompt": "x", "num_outputs": 11}}, "input.num_outputs"),
        ({"input": {"prompt": "x", "output_format": "gif"}}, "input.output_format"),
        ({"input": {"prompt": "x", "seed": -1}}, "input.seed"),
        ({"input": {"prompt": 5}}, "input.prompt"),
        (
            {"input": {"prompt": "x"}, "webhook_events_filter": ["finished"]},
            "webhook_events_filter.0",
        ),
        ({"prompt": "x"}, "input"),
        ({"input": {"prompt": "x"}, "webhook": "file:///etc/passwd"}, "webhook"),
    ],
)
async def test_bad_input_is_400(gateway: Gateway, body: dict[str, Any], param: str | None) -> None:
    response = await gateway.client.post(CREATE, json=body, headers=gateway.auth)
    assert response.status_code == 400, response.text
    error = response.json()
    assert set(error) == {"title", "detail", "status"}  # Replicate's problem details
    assert error["status"] == 400 and error["title"] == "Invalid input"
    assert param is None or param in error["detail"]


async def test_unknown_model_and_prediction_are_404(gateway: Gateway) -> None:
    response = await gateway.client.post(
        "/replicate/v1/models/nobody/nothing/predictions",
        json={"input": {"prompt": "x"}},
        headers=gateway.auth,
    )
    assert response.status_code == 404 and "nobody/nothing" in response.json()["detail"]
    for method, path in [
        ("GET", "/replicate/v1/predictions/doesnotexist"),
        ("POST", "/replicate/v1/predictions/doesnotexist/cancel"),
    ]:
        missing = await gateway.client.request(method, path, headers=gateway.auth)
        assert missing.status_code == 404
        assert missing.json()["title"] == "Not found" and missing.json()["status"] == 404


async def test_cancel_a_waiting_prediction(gateway: Gateway) -> None:
    await gateway.services.tasks.close()  # no workers: the prediction stays queued
    created = await gateway.client.post(
        CREATE, json={"input": {"prompt": "x"}}, headers=gateway.auth
    )
    prediction = created.json()
    assert prediction["status"] == "starting" and prediction["output"] is None
    cancelled = await gateway.client.post(prediction["urls"]["cancel"], headers=gateway.auth)
    assert cancelled.status_code == 200
    body = cancelled.json()
    assert body["status"] == "canceled" and body["completed_at"] and body["output"] is None


async def test_cancelling_a_finished_prediction_changes_nothing(gateway: Gateway) -> None:
    created = await gateway.client.post(
        CREATE, json={"input": {"prompt": "x"}}, headers={**gateway.auth, "Prefer": "wait"}
    )
    prediction = created.json()
    cancelled = await gateway.client.post(prediction["urls"]["cancel"], headers=gateway.auth)
    assert cancelled.json()["status"] == "succeeded"


async def test_another_key_cannot_see_or_cancel(gateway: Gateway) -> None:
    created = await gateway.client.post(
        CREATE, json={"input": {"prompt": "x"}}, headers={**gateway.auth, "Prefer": "wait"}
    )
    prediction_id = created.json()["id"]
    _, other = await gateway.services.keys.create(name="other")
    auth = {"Authorization": f"Bearer {other}"}
    seen = await gateway.client.get(f"/replicate/v1/predictions/{prediction_id}", headers=auth)
    cancel = await gateway.client.post(
        f"/replicate/v1/predictions/{prediction_id}/cancel", headers=auth
    )
    assert seen.status_code == 404 and cancel.status_code == 404


async def test_a_flux_task_is_not_a_prediction(gateway: Gateway) -> None:
    created = await gateway.client.post(
        "/flux/v1/sketch", json={"prompt": "x"}, headers=gateway.auth
    )
    response = await gateway.client.get(
        f"/replicate/v1/predictions/{created.json()['id']}", headers=gateway.auth
    )
    assert response.status_code == 404


@pytest.mark.parametrize(
    ("events", "statuses"),
    [
        (None, ["processing", "succeeded"]),
        (["completed"], ["succeeded"]),
        (["start"], ["processing"]),
        (["output"], ["succeeded"]),
    ],
)
async def test_webhooks_follow_the_events_filter(
    gateway: Gateway, events: list[str] | None, statuses: list[str]
) -> None:
    body: dict[str, Any] = {"input": {"prompt": "x"}}
    async with receiver() as box:
        body["webhook"] = box.url
        if events is not None:
            body["webhook_events_filter"] = events
        created = await gateway.client.post(CREATE, json=body, headers=gateway.auth)
        assert created.status_code == 201, created.text
        await _finished(gateway, created.json()["id"])
        await box.wait_for(len(statuses))
        await gateway.services.webhooks.deliver_due()
    payloads = [orjson.loads(delivery.body) for delivery in box.received]
    assert [payload["status"] for payload in payloads] == statuses
    key = signing_key(gateway.services.webhooks.server_signing_secret())
    assert all(delivery.signature_valid(key) for delivery in box.received)
    assert all(set(payload) == PREDICTION_KEYS for payload in payloads)
    if "succeeded" in statuses:
        assert payloads[-1]["output"][0].startswith("http://gateway.test/files/")


async def test_cancelling_reports_completed(gateway: Gateway) -> None:
    await gateway.services.tasks.close()
    async with receiver() as box:
        created = await gateway.client.post(
            CREATE,
            json={
                "input": {"prompt": "x"},
                "webhook": box.url,
                "webhook_events_filter": ["completed"],
            },
            headers=gateway.auth,
        )
        await gateway.client.post(created.json()["urls"]["cancel"], headers=gateway.auth)
        await box.wait_for(1)
    assert orjson.loads(box.received[0].body)["status"] == "canceled"


def test_a_replicate_input_for_gpt_image_1_drops_what_it_cannot_take() -> None:
    entry = load_catalog(ProviderRegistry()).resolve("gpt-image-1")
    assert entry is not None
    data = {"prompt": "x", "aspect_ratio": "3:2", "seed": 1, "go_fast": True, "num_outputs": 2}
    translated = replicate_params(data, entry, pick_seed(entry, 1))
    validated = validate_generation(entry, translated.params)
    assert translated.report(validated.ignored) == ["go_fast", "seed"]
    assert validated.request.size == "1536x1024" and validated.request.n == 2


def test_pixels_a_preset_only_model_lacks_become_its_nearest_preset() -> None:
    entry = load_catalog(ProviderRegistry()).resolve("gpt-image-1")
    assert entry is not None
    translated = replicate_params({"prompt": "x", "width": 1200, "height": 700}, entry, None)
    assert translated.params.size == "1536x1024"
    assert translated.adjusted == ["size=1200x700->1536x1024"]


async def test_a_cursor_the_gateway_did_not_issue_is_400(gateway: Gateway) -> None:
    response = await gateway.client.get(
        "/replicate/v1/predictions", params={"cursor": "%%%"}, headers=gateway.auth
    )
    assert response.status_code == 400 and response.json()["title"] == "Invalid input"


@pytest.mark.parametrize(
    ("body", "status", "word"),
    [
        ({"input": {"prompt": "x"}}, 400, "version"),
        ({"version": "imagegate/sketch:v"}, 400, "input"),
        ({"version": "imagegate/sketch:v", "input": {}}, 400, "prompt"),
        ({"version": "nobody/nothing:v", "input": {"prompt": "x"}}, 404, "nobody/nothing"),
        ({"version": "f" * 64, "input": {"prompt": "x"}}, 404, "version"),
        ({"version": "imagegate/sketch:v", "input": {"prompt": "x", "width": 4096}}, 400, "width"),
    ],
)
async def test_bad_versioned_predictions_are_problem_details(
    gateway: Gateway, body: dict[str, Any], status: int, word: str
) -> None:
    response = await gateway.client.post(
        "/replicate/v1/predictions", json=body, headers=gateway.auth
    )
    assert response.status_code == status, response.text
    problem = response.json()
    assert set(problem) == {"title", "detail", "status"} and problem["status"] == status
    assert word in problem["detail"]
    assert await gateway.services.tasks.list_owned(
        (await gateway.services.keys.authenticate(gateway.key)).id,  # type: ignore[union-attr]
        "image",
        shown=lambda _task: True,
    ) == ([], False)
