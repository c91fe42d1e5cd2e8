"""Async OpenAI image tasks (spec §10): generations, edits and variations queued with
``Prefer: respond-async`` or ``"async": true``, polled, cancelled, reported by webhook; held and
charged like every task; invisible to other keys."""

from __future__ import annotations

import base64
from dataclasses import replace
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import pytest
import sqlalchemy as sa

from imagegate.settings import Settings
from imagegate.storage.tables import ledger, reservations, tasks
from tests.api.fronts_kit import data_uri, decode, front_settings, picture, poll
from tests.conftest import Gateway
from tests.receiver import receiver

GENERATIONS = "/v1/images/generations"
ASYNC = {"Prefer": "respond-async"}
TASK_KEYS = {"id", "object", "status", "created_at", "model", "progress", "urls"}


async def finished(gateway: Gateway, task_id: str) -> dict[str, Any]:
    async def fetch() -> dict[str, Any]:
        response = await gateway.client.get(f"/v1/images/tasks/{task_id}", headers=gateway.auth)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    return await poll(fetch, lambda body: body["status"] in ("succeeded", "failed", "canceled"))


async def ledger_kinds(gateway: Gateway) -> list[tuple[str, Decimal]]:
    async with gateway.services.engine.connect() as conn:
        rows = await conn.execute(
            sa.select(ledger.c.kind, ledger.c.amount_usd).order_by(ledger.c.id)
        )
        return [(kind, Decimal(str(amount))) for kind, amount in rows]


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return front_settings(tmp_path)  # webhooks may reach the loopback receiver


def pause_workers(gateway: Gateway) -> None:
    """Tasks stay queued: the engine has no free slot to claim them with."""
    engine = gateway.services.tasks
    engine.settings = replace(engine.settings, concurrency=0)


async def test_a_generation_task_answers_what_the_sync_call_would(gateway: Gateway) -> None:
    body = {"model": "sketch", "prompt": "a red kite", "size": "256x256", "n": 2}
    sync = await gateway.client.post(GENERATIONS, json=body, headers=gateway.auth)
    assert sync.status_code == 200, sync.text
    created = await gateway.client.post(GENERATIONS, json=body, headers={**gateway.auth, **ASYNC})
    assert created.status_code == 202, created.text
    task = created.json()
    assert set(task) == TASK_KEYS and task["object"] == "image.task"
    assert task["id"].startswith("imgtask_") and task["status"] == "queued"
    assert task["model"] == "sketch" and task["progress"] == 0
    base = f"http://gateway.test/v1/images/tasks/{task['id']}"
    assert task["urls"] == {"get": base, "events": base + "/events", "cancel": base + "/cancel"}

    done = await finished(gateway, task["id"])
    assert done["status"] == "succeeded" and done["progress"] == 100
    result, expected = done["result"], sync.json()
    assert set(result) == set(expected)
    assert {k: result[k] for k in ("background", "output_format", "quality", "size")} == {
        k: expected[k] for k in ("background", "output_format", "quality", "size")
    }
    assert len(result["data"]) == 2 and result["usage"]["total_tokens"] > 0
    image = decode(base64.b64decode(result["data"][0]["b64_json"]))
    assert image.size == (256, 256)
    charges = [amount for kind, amount in await ledger_kinds(gateway) if kind == "charge"]
    assert len(charges) == 2 and charges[0] == charges[1]  # the sync call and the task, once each


async def test_body_async_on_a_json_edit_with_url_results(gateway: Gateway) -> None:
    body = {
        "model": "sketch",
        "prompt": "make it blue",
        "images": [{"image_url": data_uri(picture((256, 256)))}],
        "size": "256x256",
        "response_format": "url",
        "async": True,
    }
    created = await gateway.client.post("/v1/images/edits", json=body, headers=gateway.auth)
    assert created.status_code == 202, created.text
    assert "x-imagegate-ignored-params" not in created.headers  # "async" is no model field
    done = await finished(gateway, created.json()["id"])
    (item,) = done["result"]["data"]
    download = await gateway.client.get(item["url"])
    assert download.status_code == 200 and decode(download.content).size == (256, 256)


@pytest.mark.parametrize("route", ["/v1/images/edits", "/v1/images/variations"])
async def test_multipart_edits_and_variations_queue_too(gateway: Gateway, route: str) -> None:
    fields = {"model": "sketch", "size": "256x256"}
    if route.endswith("edits"):
        fields["prompt"] = "add a sun"
    created = await gateway.client.post(
        route,
        data={**fields, "async": "true"},
        files={"image": ("in.png", picture((256, 256)), "image/png")},
        headers=gateway.auth,
    )
    assert created.status_code == 202, created.text
    done = await finished(gateway, created.json()["id"])
    assert done["status"] == "succeeded" and len(done["result"]["data"]) == 1


async def test_cancel_releases_the_hold(gateway: Gateway) -> None:
    pause_workers(gateway)
    created = await gateway.client.post(
        GENERATIONS, json={"model": "sketch", "prompt": "x"}, headers={**gateway.auth, **ASYNC}
    )
    assert created.status_code == 202, created.text
    task_id = created.json()["id"]
    async with gateway.services.engine.connect() as conn:
        held = await conn.scalar(sa.select(reservations.c.state))
    assert held == "held"
    canceled = await gateway.client.post(f"/v1/images/tasks/{task_id}/cancel", headers=gateway.auth)
    assert canceled.status_code == 200 and canceled.json()["status"] == "canceled"
    assert "result" not in canceled.json()
    kinds = [kind for kind, _ in await ledger_kinds(gateway)]
    assert "charge" not in kinds and kinds[-2:] == ["reserve", "release"]
    again = await gateway.client.post(f"/v1/images/tasks/{task_id}/cancel", headers=gateway.auth)
    assert again.json()["status"] == "canceled"


async def test_another_keys_task_is_404_everywhere(gateway: Gateway) -> None:
    pause_workers(gateway)
    created = await gateway.client.post(
        GENERATIONS, json={"model": "sketch", "prompt": "x"}, headers={**gateway.auth, **ASYNC}
    )
    task_id = created.json()["id"]
    _, other = await gateway.services.keys.create(name="someone else")
    stranger = {"Authorization": f"Bearer {other}"}
    flux = await gateway.client.post("/flux/v1/sketch", json={"prompt": "x"}, headers=gateway.auth)
    for path, headers in [
        (f"/v1/images/tasks/{task_id}", stranger),
        (f"/v1/images/tasks/{task_id}/events", stranger),
        (f"/v1/images/tasks/{task_id}/cancel", stranger),
        ("/v1/images/tasks/imgtask_nope", gateway.auth),
        (f"/v1/images/tasks/{flux.json()['id']}", gateway.auth),  # not an image.task
    ]:
        method = "POST" if path.endswith("cancel") else "GET"
        response = await gateway.client.request(method, path, headers=headers)
        assert response.status_code == 404, (path, response.text)
        error = response.json()["error"]
        assert error["type"] == "not_found_error" and error["code"] == "task_not_found"
    mine = await gateway.client.get(f"/v1/images/tasks/{task_id}", headers=gateway.auth)
    assert mine.json()["status"] == "queued"


@pytest.mark.parametrize(
    ("body", "status", "param"),
    [
        ({"model": "sketch"}, 400, "prompt"),
        ({"model": "no-such-model", "prompt": "x"}, 404, "model"),
        ({"model": "sketch", "prompt": "x", "size": "999x999"}, 400, "size"),
        ({"model": "sketch", "prompt": "x", "webhook_url": "ftp://x"}, 400, "webhook_url"),
        ({"model": "sketch", "prompt": "x", "webhook_url": 5}, 400, "webhook_url"),
        ({"model": "sketch", "prompt": "x", "async": "yes"}, 400, "async"),
    ],
)
async def test_bad_async_requests_are_refused_and_charge_nothing(
    gateway: Gateway, body: dict[str, Any], status: int, param: str
) -> None:
    response = await gateway.client.post(
        GENERATIONS, json={**body, "async": body.get("async", True)}, headers=gateway.auth
    )
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["param"] == param and "(request id: " in error["message"]
    assert await ledger_kinds(gateway) == []
    async with gateway.services.engine.connect() as conn:
        assert await conn.scalar(sa.select(sa.func.count()).select_from(tasks)) == 0


async def test_a_failed_task_reports_an_openai_error(gateway: Gateway) -> None:
    pause_workers(gateway)
    created = await gateway.client.post(
        GENERATIONS, json={"model": "sketch", "prompt": "x"}, headers={**gateway.auth, **ASYNC}
    )
    task_id = created.json()["id"]
    async with gateway.services.engine.begin() as conn:  # the stored input vanished
        await conn.execute(
            tasks.update().where(tasks.c.id == task_id).values(request={"model": "gone"})
        )
    engine = gateway.services.tasks
    engine.settings = replace(engine.settings, concurrency=2)
    await engine.claim_and_start()
    done = await finished(gateway, task_id)
    assert done["status"] == "failed" and "result" not in done
    assert set(done["error"]) == {"message", "type", "code"}
    assert done["error"]["type"] == "server_error"
    assert "charge" not in [kind for kind, _ in await ledger_kinds(gateway)]


async def test_the_webhook_carries_the_signed_task(gateway: Gateway) -> None:
    secret = "openai-task-secret"
    async with receiver() as box:
        created = await gateway.client.post(
            GENERATIONS,
            json={
                "model": "sketch",
                "prompt": "x",
                "size": "256x256",
                "async": True,
                "webhook_url": box.url,
                "webhook_secret": secret,
            },
            headers=gateway.auth,
        )
        assert created.status_code == 202, created.text
        await finished(gateway, created.json()["id"])
        await box.wait_for(1)
        await gateway.services.webhooks.deliver_due()
    (delivery,) = box.received  # only the finished task is reported
    assert delivery.signature_valid(secret.encode())
    payload = orjson.loads(delivery.body)
    assert payload["id"] == created.json()["id"] and payload["status"] == "succeeded"
    # A webhook links the images (it is rendered in the completing transaction, where the
    # store is not read); the task itself still answers b64_json.
    link = payload["result"]["data"][0]["url"]
    image = await gateway.client.get(link)
    assert image.status_code == 200 and image.content.startswith(b"\x89PNG")


async def test_sync_calls_report_webhook_fields_as_ignored(gateway: Gateway) -> None:
    response = await gateway.client.post(
        GENERATIONS,
        json={"model": "sketch", "prompt": "x", "size": "256x256", "webhook_url": "https://x.y"},
        headers=gateway.auth,
    )
    assert response.status_code == 200
    assert response.headers["x-imagegate-ignored-params"] == "webhook_url"


async def test_events_of_a_finished_or_canceled_task_end_at_once(gateway: Gateway) -> None:
    created = await gateway.client.post(
        GENERATIONS,
        json={"model": "sketch", "prompt": "x", "size": "256x256"},
        headers={**gateway.auth, **ASYNC},
    )
    task_id = created.json()["id"]
    await finished(gateway, task_id)
    events = await gateway.client.get(f"/v1/images/tasks/{task_id}/events", headers=gateway.auth)
    assert events.headers["content-type"].startswith("text/event-stream")
    lines = events.text.strip().split("\n")
    assert lines[0] == "event: image.task.completed" and len(lines) == 2
    assert orjson.loads(lines[1].removeprefix("data: "))["result"]["data"]

    pause_workers(gateway)
    created = await gateway.client.post(
        GENERATIONS, json={"model": "sketch", "prompt": "x"}, headers={**gateway.auth, **ASYNC}
    )
    task_id = created.json()["id"]
    await gateway.client.post(f"/v1/images/tasks/{task_id}/cancel", headers=gateway.auth)
    events = await gateway.client.get(f"/v1/images/tasks/{task_id}/events", headers=gateway.auth)
    name, data = events.text.strip().split("\n")
    assert name == "event: image.task.failed"
    assert orjson.loads(data.removeprefix("data: "))["status"] == "canceled"


async def test_an_idempotent_retry_of_a_submit_queues_one_task(gateway: Gateway) -> None:
    pause_workers(gateway)
    headers = {**gateway.auth, **ASYNC, "Idempotency-Key": "submit-once"}
    body = {"model": "sketch", "prompt": "x"}
    first = await gateway.client.post(GENERATIONS, json=body, headers=headers)
    again = await gateway.client.post(GENERATIONS, json=body, headers=headers)
    assert first.status_code == again.status_code == 202
    assert first.json()["id"] == again.json()["id"]
    async with gateway.services.engine.connect() as conn:
        assert await conn.scalar(sa.select(sa.func.count()).select_from(tasks)) == 1
        assert await conn.scalar(sa.select(sa.func.count()).select_from(reservations)) == 1
