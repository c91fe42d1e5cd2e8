"""The seed document's own Python example, with only the base URL, key and model changed."""

from __future__ import annotations

import os

import pytest
import requests

from tests.conftest import LiveServer


def test_seed_document_example_runs_unchanged(
    live_server: LiveServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COMETAPI_KEY", live_server.key)

    # ---- from the seed document (base URL and model id replaced) ----
    response = requests.post(
        f"{live_server.base_url}/v1/images/generations",
        headers={
            "Authorization": "Bearer " + os.environ["COMETAPI_KEY"],
            "Content-Type": "application/json",
        },
        json={
            "model": "sketch",
            "prompt": "A clean product photo of a glass teapot on a white table",
            "size": "1024x1024",
        },
        timeout=120,
    )

    response.raise_for_status()
    result = response.json()
    print(result["data"][0].keys())
    # ---- end of the example ----

    assert set(result["data"][0]) == {"b64_json"}
    assert {"created", "background", "output_format", "quality", "size", "usage"} <= set(result)
