"""A user's existing Gemini and Flux clients → a live imagegate → the matching upstream's fake.

The gateway is configured as a user would: ``GEMINI_API_KEY`` and ``BFL_API_KEY`` set, the
base-URL variables pointing at the fakes on loopback. ``google-genai`` draws with a Gemini
model on the Gemini fake; a plain HTTP client follows BFL's documented create → poll →
download flow for ``flux-pro-1.1`` on the BFL fake. (OpenAI's SDK on the OpenAI fake is in
``test_sdks_through_upstreams``; Midjourney clients on a relay in ``tests/api``.)
"""

from __future__ import annotations

import io
import time
from collections.abc import Iterator

import httpx
import pytest
from PIL import Image

from imagegate.providers.fakes import FakeBFL, FakeGemini, serve_in_thread
from imagegate.settings import Settings
from tests.conftest import ADMIN_KEY
from tests.contract.live_kit import Stack, genai_images, live_gateway

GEMINI_KEY, BFL_KEY = "gemini-contract-key", "bfl-contract-key"
gemini, bfl = FakeGemini(GEMINI_KEY), FakeBFL(BFL_KEY)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    gemini_server, bfl_server = serve_in_thread(gemini.app), serve_in_thread(bfl.app)
    with pytest.MonkeyPatch.context() as env:
        env.setenv("GEMINI_API_KEY", GEMINI_KEY)
        env.setenv("GOOGLE_GEMINI_BASE_URL", gemini_server.base_url)
        env.setenv("BFL_API_KEY", BFL_KEY)
        env.setenv("BFL_BASE_URL", bfl_server.base_url)
        env.delenv("GOOGLE_API_KEY", raising=False)
        env.delenv("GOOGLE_GENAI_USE_VERTEXAI", raising=False)
        data_dir = tmp_path_factory.mktemp("clients-upstreams")
        settings = Settings(data_dir=data_dir, admin_key=ADMIN_KEY, task_poll_seconds=0.05)
        try:
            with live_gateway(settings) as live:
                yield live
        finally:
            gemini_server.stop()
            bfl_server.stop()


def test_google_genai_draws_with_gemini_on_the_gemini_upstream(stack: Stack) -> None:
    (image,) = genai_images(
        stack.gateway, stack.key, "gemini-2.5-flash-image", "a lighthouse in the fog", "16:9"
    )
    assert image.size == (1344, 768)  # Gemini's own 16:9 size
    (call,) = gemini.calls_to("generate")
    assert call.headers["x-goog-api-key"] == GEMINI_KEY  # the operator's key, in a header
    assert stack.key not in str(call.headers) and GEMINI_KEY not in call.path
    assert call.json["generationConfig"]["imageConfig"]["aspectRatio"] == "16:9"


def test_a_flux_client_runs_flux_pro_on_black_forest_labs(stack: Stack) -> None:
    auth = {"x-key": stack.key}
    with httpx.Client(base_url=stack.gateway, headers=auth, timeout=30) as client:
        created = client.post(
            "/flux/v1/flux-pro-1.1",
            json={"prompt": "a red kite over dunes", "width": 1024, "height": 768, "seed": 5},
        )
        assert created.status_code == 200, created.text
        polling_url = created.json()["polling_url"]
        deadline = time.monotonic() + 30
        while (done := client.get(polling_url).json())["status"] == "Pending":
            assert time.monotonic() < deadline
            time.sleep(0.05)
    assert done["status"] == "Ready", done
    sample = done["result"]["sample"]
    assert sample.startswith(stack.gateway)  # imagegate's own link, not BFL's expiring one
    download = httpx.get(sample)
    assert download.status_code == 200
    assert Image.open(io.BytesIO(download.content)).size == (1024, 768)
    (submitted,) = bfl.calls_to("submit")
    assert submitted.path == "/v1/flux-pro-1.1" and submitted.headers["x-key"] == BFL_KEY
    assert submitted.json["seed"] == 5 and submitted.json["prompt"] == "a red kite over dunes"
    assert charged(stack, "flux-pro-1.1") == [0.04]


def charged(stack: Stack, model: str) -> list[float]:
    """What the key was charged for ``model``, per request (its own usage report)."""
    usage = httpx.get(
        f"{stack.gateway}/api/usage",
        params={"model": model},
        headers={"Authorization": f"Bearer {stack.key}"},
    )
    usage.raise_for_status()
    return [row["cost_usd"] for row in usage.json()["data"]]
