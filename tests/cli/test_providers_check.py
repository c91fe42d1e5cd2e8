"""``imagegate providers check`` against fake upstreams."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from typer.testing import CliRunner

from imagegate.cli import app
from imagegate.providers.fakes import FakeBFL, FakeGemini, FakeMidjourneyProxy, FakeOpenAI
from tests.providers.upstream_kit import running

runner = CliRunner()
openai, gemini, bfl = FakeOpenAI("sk-check"), FakeGemini("g-check"), FakeBFL("b-check")
relay = FakeMidjourneyProxy("mj-check")

PROVIDER_ENV = (
    "OPENAI_API_KEY", "OPENAI_BASE_URL", "AZURE_OPENAI_API_KEY", "AZURE_OPENAI_ENDPOINT",
    "GEMINI_API_KEY", "GOOGLE_API_KEY", "GOOGLE_GEMINI_BASE_URL", "BFL_API_KEY", "BFL_BASE_URL",
    "REPLICATE_API_TOKEN", "FAL_KEY", "XAI_API_KEY", "MIDJOURNEY_PROXY_URL",
    "MIDJOURNEY_PROXY_SECRET", "IMAGEGATE_CONFIG",
)  # fmt: skip


@pytest.fixture(scope="module")
def bases() -> Iterator[dict[str, str]]:
    with running(openai) as o, running(gemini) as g, running(bfl) as b, running(relay) as r:
        yield {"openai": o, "gemini": g, "bfl": b, "relay": r}


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in PROVIDER_ENV:
        monkeypatch.delenv(name, raising=False)
    for fake in (openai, gemini, bfl, relay):
        fake.reset()


def test_every_configured_deployment_is_checked(
    bases: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-check")
    monkeypatch.setenv("OPENAI_BASE_URL", f"{bases['openai']}/v1")
    monkeypatch.setenv("GEMINI_API_KEY", "g-check")
    monkeypatch.setenv("GOOGLE_GEMINI_BASE_URL", bases["gemini"])
    monkeypatch.setenv("BFL_API_KEY", "b-check")
    monkeypatch.setenv("BFL_BASE_URL", bases["bfl"])
    monkeypatch.setenv("MIDJOURNEY_PROXY_URL", bases["relay"])
    monkeypatch.setenv("MIDJOURNEY_PROXY_SECRET", "mj-check")
    result = runner.invoke(app, ["providers", "check", "--all"])
    assert result.exit_code == 0, result.output
    assert "gpt-image-1" in result.output and "imagen-4.0-generate-001" in result.output
    assert "AZURE_OPENAI_API_KEY" in result.output  # listed as not configured
    assert "sk-check" not in result.output and "g-check" not in result.output
    assert {call.path for call in openai.calls} >= {"/v1/models/gpt-image-1", "/v1/models/dall-e-3"}
    assert gemini.calls and all(call.route == "model" for call in gemini.calls)
    assert bfl.calls[0].path == "/v1/credits"
    assert "midjourney" in result.output and "relay reachable" in result.output
    assert [call.path for call in relay.calls] == ["/mj/task/list-by-condition"]


def test_a_refused_key_fails_the_check(
    bases: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-wrong")
    monkeypatch.setenv("OPENAI_BASE_URL", f"{bases['openai']}/v1")
    result = runner.invoke(app, ["providers", "check", "-m", "gpt-image-1"])
    assert result.exit_code == 1
    assert "failed" in result.output and "sk-wrong" not in result.output
