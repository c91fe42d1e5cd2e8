"""One structured log line per request; never a key or image bytes in it."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import orjson
import pytest
import sqlalchemy as sa
from starlette.types import Message

from imagegate.storage.tables import usage
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


@pytest.mark.parametrize(
    ("path", "logged"),
    [
        ("/v1/images/generations", 499),  # a direct route: nothing is sent
        ("/v1beta/models/sketch:generateContent", 400),  # FastAPI's: a 400 no one reads
    ],
)
async def test_a_client_gone_before_its_body_arrived_is_not_a_crash(
    gateway: Gateway, caplog: pytest.LogCaptureFixture, path: str, logged: int
) -> None:
    """Half a body, then the connection drops (as ``wrk`` does when it stops): no usage row,
    no "unhandled error" with a traceback, no 500."""
    caplog.set_level(logging.DEBUG, logger="imagegate")
    messages: Iterator[Message] = iter(
        [
            {"type": "http.request", "body": b'{"prompt": "half a', "more_body": True},
            {"type": "http.disconnect"},
        ]
    )
    sent: list[Message] = []

    async def receive() -> Message:
        return next(messages)

    async def send(message: Message) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"gateway.test"),
            (b"content-type", b"application/json"),
            (b"authorization", f"Bearer {gateway.key}".encode()),
            (b"x-goog-api-key", gateway.key.encode()),
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("gateway.test", 80),
    }
    await gateway.app(scope, receive, send)
    await gateway.services.usage.flush()

    assert not [m for m in sent if m["type"] == "http.response.start" and m["status"] >= 500]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    access = [orjson.loads(r.getMessage()) for r in caplog.records if r.name == "imagegate.access"]
    assert [line["status"] for line in access] == [logged]
    async with gateway.services.engine.connect() as conn:
        assert (await conn.execute(sa.select(sa.func.count()).select_from(usage))).scalar() == 0
