"""Midjourney ``notifyHook`` deliveries (signed, retried) and a flow against a real server."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from imagegate.core.webhooks import signing_key
from imagegate.settings import Settings
from tests.api.mj_kit import SMALL, submit, wait
from tests.conftest import ADMIN_KEY, Gateway, LiveServer
from tests.receiver import receiver


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Webhooks may reach the loopback receiver and are retried within a second."""
    return Settings(
        data_dir=tmp_path / "data",
        admin_key=ADMIN_KEY,
        webhook_backoff_seconds=[0.05, 0.05, 0.05],
        outbound_allow=["127.0.0.1/32"],
    )


async def test_notify_hook_gets_signed_task_objects_and_retries(gateway: Gateway) -> None:
    client, auth = gateway.client, gateway.auth
    async with receiver(statuses=[500]) as box:
        body = {"prompt": f"a yellow sun {SMALL}", "notifyHook": box.url, "state": "order-7"}
        answer = await submit(client, "/mj/submit/imagine", body, auth)
        done = await wait(client, answer["result"], auth)
        await box.wait_for(3, timeout=15)  # started (refused once, then again) and finished
    key = signing_key(gateway.services.webhooks.server_signing_secret())
    assert all(item.signature_valid(key) for item in box.received)
    payloads = [orjson.loads(item.body) for item in box.received]
    ids = [item.headers["webhook-id"] for item in box.received]
    retried = next(i for i, message in enumerate(ids) if ids.count(message) == 2)
    again = ids.index(ids[retried], retried + 1)
    assert box.received[retried].body == box.received[again].body
    assert {p["status"] for p in payloads} == {"IN_PROGRESS", "SUCCESS"}
    final = next(p for p in payloads if p["status"] == "SUCCESS")
    assert final["id"] == done["id"] and final["state"] == "order-7"
    assert final["imageUrl"].startswith("http://gateway.test/mj/image/")
    assert [b["label"] for b in final["buttons"]][:2] == ["U1", "U2"]
    image = await client.get(final["imageUrl"])
    assert image.status_code == 200


def test_a_plain_client_against_a_real_server(live_server: LiveServer) -> None:
    headers = {"Authorization": live_server.key}  # bare, as midjourney-proxy clients send it
    with httpx.Client(base_url=live_server.base_url, headers=headers, timeout=30) as client:
        answer = client.post("/mj-relax/mj/submit/imagine", json={"prompt": f"a house {SMALL}"})
        assert answer.status_code == 200 and answer.json()["code"] in (1, 22)
        task = _poll(client, answer.json()["result"])
        assert task["properties"]["speed"] == "relax"
        upscale = next(b for b in task["buttons"] if b["label"] == "U3")
        body = {"taskId": task["id"], "customId": upscale["customId"]}
        pressed = client.post("/mj/submit/action", json=body).json()
        upscaled = _poll(client, pressed["result"])
        assert upscaled["imageUrl"].startswith(live_server.base_url + "/mj/image/")
        image = httpx.get(upscaled["imageUrl"])  # no key: the signature is the credential
        assert image.status_code == 200 and image.headers["content-type"] == "image/png"


def _poll(client: httpx.Client, task_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 30
    while True:
        task: dict[str, Any] = client.get(f"/mj/task/{task_id}/fetch").json()
        if task["status"] == "SUCCESS":
            return task
        assert task["status"] not in ("FAILURE", "CANCEL") and time.monotonic() < deadline, task
        time.sleep(0.03)
