"""``imagegate serve`` as a user runs it: a real process, its printed admin key, a real PNG."""

from __future__ import annotations

import base64
import io
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from PIL import Image
from typer.testing import CliRunner

from imagegate.cli import app
from imagegate.cli.serve import worker_count

EXECUTABLE = Path(sys.executable).with_name("imagegate")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen[str], Path]]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("IMAGEGATE_")}
    data_dir = tmp_path / "data"
    process = subprocess.Popen(
        [str(EXECUTABLE), "serve", "--port", str(port), "--data-dir", str(data_dir)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    base_url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(f"{base_url}/readyz").status_code == 200:
                break
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline or process.poll() is not None:
            process.kill()
            pytest.fail(f"server did not become ready: {process.communicate()[0]}")
        time.sleep(0.05)
    yield base_url, process, data_dir
    process.send_signal(signal.SIGTERM)
    process.communicate(timeout=15)


def test_serve_prints_an_admin_key_and_the_readme_curl_gets_a_png(
    served: tuple[str, subprocess.Popen[str], Path],
) -> None:
    base_url, process, data_dir = served
    assert process.stdout is not None
    lines: list[str] = []
    while not any(line.strip().startswith("ig-") for line in lines):
        lines.append(process.stdout.readline())
    admin_key = next(line.strip() for line in lines if line.strip().startswith("ig-"))
    console = process.stdout.readline().strip()
    assert console == f"Web console: {base_url}/console (sign in with an API key)"
    assert httpx.get(f"{base_url}/console").headers["location"] == "/console/sign-in"

    response = httpx.post(
        f"{base_url}/v1/images/generations",
        headers={"Authorization": f"Bearer {admin_key}"},
        json={"model": "sketch", "prompt": "a red house under a yellow sun by the blue sea"},
        timeout=60,
    )
    assert response.status_code == 200, response.text
    image = Image.open(io.BytesIO(base64.b64decode(response.json()["data"][0]["b64_json"])))
    assert image.format == "PNG"
    assert (data_dir / "server-secret").stat().st_mode & 0o777 == 0o600
    assert any((data_dir / "assets").rglob("*"))


def test_workers_auto_is_one_per_usable_core(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "sched_getaffinity", lambda _pid: {0, 1, 2}, raising=False)
    assert worker_count("auto") == 3
    assert worker_count(" AUTO ") == 3
    assert worker_count("4") == 4


@pytest.mark.parametrize("given", ["0", "-2", "many", ""])
def test_workers_must_be_a_positive_number_or_auto(given: str) -> None:
    result = CliRunner().invoke(app, ["serve", "--workers", given])
    assert result.exit_code == 2
    assert "neither a positive number nor 'auto'" in result.output
