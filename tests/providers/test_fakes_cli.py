"""``python -m imagegate.providers.fakes``: every kind documented in --help, every kind honours
``--api-key``."""

from __future__ import annotations

from typing import Any

import pytest
import uvicorn
from starlette.testclient import TestClient

from imagegate.providers.fakes import server

# kind -> (method, path, JSON body or None, header name, header value template)
PROBES: dict[str, tuple[str, str, dict[str, Any] | None, str, str]] = {
    "openai": (
        "POST",
        "/v1/images/generations",
        {"model": "gpt-image-1", "prompt": "x"},
        "authorization",
        "Bearer {}",
    ),
    "gemini": ("GET", "/v1beta/models/gemini-2.5-flash-image", None, "x-goog-api-key", "{}"),
    "bfl": ("GET", "/v1/credits", None, "x-key", "{}"),
    "replicate": ("GET", "/v1/account", None, "authorization", "Bearer {}"),
    "fal": ("POST", "/fal-ai/flux/dev", {"prompt": "x"}, "authorization", "Key {}"),
    "midjourney": ("POST", "/mj/submit/imagine", {"prompt": "x"}, "mj-api-secret", "{}"),
    "dashscope": ("GET", "/api/v1/tasks", None, "authorization", "Bearer {}"),
    "recraft": ("GET", "/v1/users/me", None, "authorization", "Bearer {}"),
}


def test_help_documents_every_kind(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        server.main(["--help"])
    text = capsys.readouterr().out
    assert set(PROBES) == set(server.KINDS)
    for name, kind in server.KINDS.items():
        assert f"  {name} " in text and kind.default_key in text
    assert "MIDJOURNEY_PROXY_URL=http://HOST:PORT" in text and "--api-key" in text


@pytest.mark.parametrize("kind", sorted(PROBES))
def test_every_kind_honours_api_key(
    kind: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    started: list[Any] = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **_: started.append(app))
    server.main([kind, "--port", "9999", "--api-key", "my-own-key"])
    assert "my-own-key" in capsys.readouterr().out
    method, path, body, header, template = PROBES[kind]
    with TestClient(started[0]) as client:

        def call(key: str) -> int:
            return client.request(
                method, path, json=body, headers={header: template.format(key)}
            ).status_code

        assert call("my-own-key") < 400
        assert call(server.KINDS[kind].default_key) >= 400
