"""Hostile input that once gave 500s: every one is a 4xx in the route's envelope, or a normal
answer, and nothing is charged twice."""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote

import pytest

from tests.conftest import Gateway

ODD_NAME = "€\r\nx-injected: 1"
"""Not Latin-1, and with a line break that would split the header if sent as is."""

IGNORED_ROUTES: list[tuple[str, dict[str, Any], dict[str, str]]] = [
    ("/v1/images/generations", {"model": "sketch", "prompt": "sky", "size": "256x256"}, {}),
    ("/v1beta/models/sketch:generateContent", {"contents": [{"parts": [{"text": "sun"}]}]}, {}),
    ("/v1beta/models/sketch:predict", {"instances": [{"prompt": "sun"}]}, {}),
    ("/flux/v1/sketch", {"prompt": "a moon", "width": 256, "height": 256}, {}),
    (
        "/replicate/v1/models/imagegate/sketch/predictions",
        {"input": {"prompt": "x"}},
        {"Prefer": "wait=30"},
    ),
    ("/bria/text-to-image", {"prompt": "a tree", "sync": True}, {}),
]


def _with_odd_field(path: str, body: dict[str, Any]) -> dict[str, Any]:
    if path.startswith("/replicate/"):
        return {"input": {**body["input"], ODD_NAME: 1}}
    if path.endswith(":predict"):
        return {**body, "parameters": {ODD_NAME: 1}}
    if path.endswith(":generateContent"):
        return {**body, "generationConfig": {ODD_NAME: 1}}
    return {**body, ODD_NAME: 1}


@pytest.mark.parametrize(("path", "body", "headers"), IGNORED_ROUTES)
async def test_an_unknown_field_named_outside_latin_1_is_reported_not_a_500(
    gateway: Gateway, path: str, body: dict[str, Any], headers: dict[str, str]
) -> None:
    auth = {**gateway.auth, "x-goog-api-key": gateway.key, "x-key": gateway.key}
    response = await gateway.client.post(
        path, json=_with_odd_field(path, body), headers={**auth, **headers}
    )
    assert response.status_code < 300, response.text
    assert "x-injected" not in response.headers
    raw = response.headers["x-imagegate-ignored-params"]
    assert raw.isascii() and "\r" not in raw and "\n" not in raw
    assert any(name.endswith(ODD_NAME) for name in unquote(raw).split(","))
