"""One structured log line per request; never a key or image bytes in it."""

from __future__ import annotations

import logging

import orjson
import pytest

from tests.conftest import Gateway


async def test_one_json_line_per_request_without_secrets(
    gateway: Gateway, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="imagegate")
    response = await gateway.client.post(
        "/v1/images/generations",
        json={"model": "sketch", "prompt": "a green tree", "size": "256x256"},
        headers=gateway.auth,
    )
    await gateway.client.get("/v1/models", headers={"Authorization": "Bearer not-a-real-key"})

    lines = [r.getMessage() for r in caplog.records if r.name == "imagegate.access"]
    assert len(lines) == 2
    first, second = (orjson.loads(line) for line in lines)
    assert first["request_id"] == response.headers["x-request-id"]
    assert (first["status"], first["model"], first["images"]) == (200, "sketch", 1)
    assert first["key_id"].startswith("key_")
    assert second["status"] == 401
    everything = "\n".join(r.getMessage() for r in caplog.records)
    assert gateway.key not in everything and "not-a-real-key" not in everything
    assert response.json()["data"][0]["b64_json"][:40] not in everything
