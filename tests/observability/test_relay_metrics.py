"""The Midjourney relay's calls and images are counted like the router's."""

from __future__ import annotations

from prometheus_client import REGISTRY

from imagegate.settings import Settings
from tests.api.mj_kit import submit, wait
from tests.api.test_midjourney_relay import relay_settings, relay_url, serving

__all__ = ["relay_settings", "relay_url"]  # fixtures


def sample(name: str, labels: dict[str, str]) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_relay_submits_polls_and_images_are_counted(relay_settings: Settings) -> None:
    calls = {"provider": "midjourney-proxy", "deployment": "midjourney#0:midjourney-proxy"}
    ok = {**calls, "outcome": "ok"}
    images = {"model": "midjourney", "provider": "midjourney-proxy"}
    before = (
        sample("imagegate_upstream_requests_total", ok),
        sample("imagegate_images_total", images),
    )
    async with serving(relay_settings) as gateway:
        body = {"prompt": "a lighthouse"}
        answer = await submit(gateway.client, "/mj/submit/imagine", body, gateway.auth)
        grid = await wait(gateway.client, answer["result"], gateway.auth)
        assert grid["status"] == "SUCCESS"
    calls_after = sample("imagegate_upstream_requests_total", ok)
    assert calls_after >= before[0] + 2  # the submit and at least the final poll
    assert sample("imagegate_images_total", images) == before[1] + 1
