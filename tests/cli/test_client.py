"""The client commands (``generate``, ``edit``, ``imagine``, ``press``, …) against a live server."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from PIL import Image, ImageChops
from rich.console import Console
from typer.testing import CliRunner

from imagegate.app import create_app
from imagegate.cli import app
from imagegate.providers.fakes import serve_in_thread
from imagegate.settings import Settings
from tests.conftest import ADMIN_KEY, priced_sketch_config

runner = CliRunner()


def picture(path: Path) -> Image.Image:
    with Image.open(path) as image:
        return image.copy()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """A live gateway on loopback where ``sketch`` has a price (so a cost shows), and a key."""
    data_dir = tmp_path_factory.mktemp("client")
    settings = Settings(
        data_dir=data_dir,
        admin_key=ADMIN_KEY,
        config=priced_sketch_config(data_dir),
    )
    running = serve_in_thread(create_app(settings), lifespan="on")
    created = httpx.post(
        f"{running.base_url}/admin/keys",
        json={"name": "cli client"},
        headers={"Authorization": f"Bearer {ADMIN_KEY}"},
    )
    created.raise_for_status()
    yield running.base_url, created.json()["key"]
    running.stop()


@pytest.fixture
def env(server: tuple[str, str], monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    monkeypatch.delenv("IMAGEGATE_KEY", raising=False)
    monkeypatch.delenv("IMAGEGATE_BASE_URL", raising=False)
    base_url, key = server
    return {"IMAGEGATE_BASE_URL": base_url, "IMAGEGATE_KEY": key, "COLUMNS": "200"}


def test_generate_saves_images_and_prints_the_cost(env: dict[str, str], tmp_path: Path) -> None:
    out = tmp_path / "out"
    args = ["generate", "a red fox under a yellow sun", "-n", "2", "-s", "256x256", "-o", str(out)]
    result = runner.invoke(app, args, env=env)
    assert result.exit_code == 0, result.output
    files = sorted(out.iterdir())
    assert [f.name for f in files] == [
        "a-red-fox-under-a-yellow-1.png",
        "a-red-fox-under-a-yellow-2.png",
    ]
    assert all(picture(f).size == (256, 256) for f in files)
    cost = float(result.stdout.split("cost: $")[1].split()[0])
    assert cost > 0


def test_errors_exit_non_zero_with_the_servers_message(env: dict[str, str], tmp_path: Path) -> None:
    bad_size = runner.invoke(app, ["generate", "x", "-s", "3x3", "-o", str(tmp_path)], env=env)
    assert bad_size.exit_code == 1
    assert "HTTP 400: size '3x3' is not supported by model 'sketch'" in bad_size.stderr
    assert "request id: req_" in bad_size.stderr

    no_key = runner.invoke(app, ["generate", "x"], env={**env, "IMAGEGATE_KEY": ""})
    assert no_key.exit_code == 1 and "IMAGEGATE_KEY" in no_key.stderr

    wrong_key = runner.invoke(app, ["generate", "x", "--key", "ig-nope"], env=env)
    assert wrong_key.exit_code == 1 and "HTTP 401" in wrong_key.stderr

    no_server = runner.invoke(app, ["generate", "x", "--base-url", "http://127.0.0.1:9"], env=env)
    assert no_server.exit_code == 1 and "cannot reach imagegate" in no_server.stderr
    assert list(tmp_path.iterdir()) == []


def test_sample_then_masked_edit(env: dict[str, str], tmp_path: Path) -> None:
    photo, mask, edited = tmp_path / "photo.png", tmp_path / "mask.png", tmp_path / "edited.png"
    made = runner.invoke(app, ["sample", str(photo), "--mask", str(mask)])
    assert made.exit_code == 0, made.output
    args = [
        "edit",
        str(photo),
        "blue sea with a white boat",
        "--mask",
        str(mask),
        "-o",
        str(edited),
    ]
    result = runner.invoke(app, args, env=env)
    assert result.exit_code == 0, result.output
    assert "cost: $" in result.stdout
    before, after = picture(photo).convert("RGB"), picture(edited).convert("RGB")
    assert after.size == before.size == (512, 512)
    top = (0, 0, 512, 256)
    assert ImageChops.difference(before.crop(top), after.crop(top)).getbbox() is None
    assert ImageChops.difference(before, after).getbbox() is not None


def test_imagine_then_press_u1_with_progress(
    env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shown = io.StringIO()
    monkeypatch.setattr(
        "imagegate.cli.midjourney.stderr", Console(file=shown, force_terminal=True, width=100)
    )
    grid = tmp_path / "grid.png"
    imagined = runner.invoke(
        app, ["imagine", "a red house by the sea --ar 3:2 --q .25", "-o", str(grid)], env=env
    )
    assert imagined.exit_code == 0, imagined.output
    assert "100%" in shown.getvalue()  # the bar reached its end
    task_id = imagined.stdout.split()[1]
    assert "buttons: U1 | U2 | U3 | U4 | 🔄 | V1" in imagined.stdout
    assert f"imagegate press {task_id} U1" in imagined.stdout
    width, height = picture(grid).size
    assert width * 2 == height * 3

    upscaled = tmp_path / "up.png"
    pressed = runner.invoke(app, ["press", task_id, "U1", "-o", str(upscaled)], env=env)
    assert pressed.exit_code == 0, pressed.output
    assert "Upscale (Subtle)" in pressed.stdout and "cost: $" in pressed.stdout
    assert picture(upscaled).size == (width // 2, height // 2)  # one picture of the grid

    quiet = runner.invoke(
        app, ["press", task_id, "V2", "--quiet", "-o", str(tmp_path / "v2.png")], env=env
    )
    assert quiet.exit_code == 0, quiet.output
    assert len(quiet.stdout.split()) == 1 and quiet.stdout.strip() != task_id
    assert (tmp_path / "v2.png").stat().st_size > 0

    missing = runner.invoke(app, ["press", task_id, "U9"], env=env)
    assert missing.exit_code == 1 and "its buttons: U1, U2" in missing.stderr

    watched = runner.invoke(
        app, ["tasks", "watch", task_id, "-o", str(tmp_path / "again.png")], env=env
    )
    assert watched.exit_code == 0, watched.output
    assert (tmp_path / "again.png").read_bytes() == grid.read_bytes()


def test_models_and_estimate(env: dict[str, str]) -> None:
    listed = runner.invoke(app, ["models", "--all"], env={**env, "IMAGEGATE_KEY": ""})
    assert listed.exit_code == 0, listed.output
    assert "sketch" in listed.stdout and "gpt-image-1" in listed.stdout
    assert "$5 in, $40 out / M Tokens" in listed.stdout
    quoted = runner.invoke(app, ["estimate", "a cat", "-n", "4", "-q", "high"], env=env)
    assert quoted.exit_code == 0, quoted.output
    assert "model: sketch" in quoted.stdout
    edit_quote = runner.invoke(app, ["estimate", "a cat", "--edit", "2"], env=env)
    assert edit_quote.exit_code == 0, edit_quote.output
    assert float(edit_quote.stdout.split("estimated cost: $")[1].split()[0]) > 0
    assert float(quoted.stdout.split("estimated cost: $")[1].split()[0]) > 0
