"""``imagegate providers check`` reaches A1111, ComfyUI, DashScope, Ideogram, Recraft and Kling
with their cheapest authenticated calls, and fails on refused credentials."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from typer.testing import CliRunner

from imagegate.cli import app
from imagegate.providers.fakes import (
    FakeA1111,
    FakeComfyUI,
    FakeDashScope,
    FakeIdeogram,
    FakeKling,
    FakeRecraft,
)
from tests.providers.upstream_kit import running

runner = CliRunner()
SECRET = "kling-check-secret-of-thirty-two-bytes"
a1111, comfy, dash = FakeA1111("op:pw"), FakeComfyUI(), FakeDashScope("sk-dash-check")
ideo, recraft, kling = FakeIdeogram("ideo-check"), FakeRecraft("rc-check"), FakeKling("ak", SECRET)


@pytest.fixture(scope="module")
def env() -> Iterator[dict[str, str]]:
    with (
        running(a1111) as a, running(comfy) as c, running(dash) as d, running(ideo) as i,
        running(recraft) as r, running(kling) as k,
    ):  # fmt: skip
        yield {
            "A1111_BASE_URL": a, "A1111_AUTH": "op:pw", "COMFYUI_BASE_URL": c,
            "DASHSCOPE_API_KEY": "sk-dash-check", "DASHSCOPE_BASE_URL": d,
            "IDEOGRAM_API_KEY": "ideo-check", "IDEOGRAM_BASE_URL": i,
            "RECRAFT_API_KEY": "rc-check", "RECRAFT_BASE_URL": r,
            "KLING_ACCESS_KEY": "ak", "KLING_SECRET_KEY": SECRET, "KLING_BASE_URL": k,
        }  # fmt: skip


@pytest.fixture(autouse=True)
def only_these(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("OPENAI_API_KEY", "GEMINI_API_KEY", "GOOGLE_API_KEY", "BFL_API_KEY",
                 "MIDJOURNEY_PROXY_URL", "IMAGEGATE_CONFIG"):  # fmt: skip
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    for fake in (a1111, comfy, dash, ideo, recraft, kling):
        fake.reset()


def test_each_new_upstream_is_checked() -> None:
    models = ["a1111", "comfyui", "qwen-image", "ideogram-v3", "recraft-v3", "kling-v2-1"]
    result = runner.invoke(app, ["providers", "check", *[arg for m in models for arg in ("-m", m)]])
    assert result.exit_code == 0, result.output
    assert [c.path for c in a1111.calls] == ["/sdapi/v1/sd-models"]
    assert [c.path for c in comfy.calls] == ["/system_stats"]
    assert [c.path for c in dash.calls] == ["/api/v1/tasks"]
    assert [c.path for c in ideo.calls] == ["/v1/ideogram-v3/generate"]
    assert [c.path for c in recraft.calls] == ["/v1/users/me"]
    assert [c.path for c in kling.calls] == ["/v1/images/generations"]
    for secret in ("op:pw", "sk-dash-check", "ideo-check", "rc-check", SECRET):
        assert secret not in result.output


def test_refused_credentials_fail_the_check(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KLING_SECRET_KEY", "not-the-secret-but-thirty-two-bytes!")
    monkeypatch.setenv("RECRAFT_API_KEY", "wrong")
    for model in ("kling-v2-1", "recraft-v3"):
        result = runner.invoke(app, ["providers", "check", "-m", model])
        assert result.exit_code == 1 and "failed" in result.output, result.output
