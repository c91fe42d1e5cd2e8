"""A webhook target no delivery could reach is refused when the client submits it, with an
error that names the setting that would allow it, on every route that takes one."""

from __future__ import annotations

from tests.conftest import Gateway

PRIVATE = "http://127.0.0.1:9/hook"


async def test_flux_refuses_a_private_webhook_url(gateway: Gateway) -> None:
    response = await gateway.client.post(
        "/flux/v1/sketch",
        json={"prompt": "a red square", "webhook_url": PRIVATE},
        headers=gateway.auth,
    )
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["param"] == "webhook_url" and "IMAGEGATE_OUTBOUND_ALLOW" in error["message"]


async def test_replicate_refuses_a_private_webhook(gateway: Gateway) -> None:
    response = await gateway.client.post(
        "/replicate/v1/models/imagegate/sketch/predictions",
        json={"input": {"prompt": "a red square"}, "webhook": PRIVATE},
        headers=gateway.auth,
    )
    assert response.status_code == 400, response.text
    assert "IMAGEGATE_OUTBOUND_ALLOW" in response.json()["detail"]  # Replicate's error shape


async def test_midjourney_refuses_a_private_notify_hook(gateway: Gateway) -> None:
    response = await gateway.client.post(
        "/mj/submit/imagine",
        json={"prompt": "a red square", "notifyHook": "http://10.0.0.1/hook"},
        headers=gateway.auth,
    )
    assert response.status_code == 200
    body = response.json()
    assert body["code"] == 4 and "IMAGEGATE_OUTBOUND_ALLOW" in body["description"]
