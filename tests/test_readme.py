"""The README's examples run as written, so it cannot drift from the code.

Every block fenced as ```` ```sh tested ```` runs, in the README's order, as ONE bash script
(variables and files carry over from block to block, as in a reader's terminal) with
``set -euo pipefail``, this virtualenv's ``bin`` first on ``PATH`` (what ``source
.venv/bin/activate`` does) and ``curl`` failing on HTTP errors, against a live server:
``http://127.0.0.1:8000`` in a block is rewritten to that server, ``IMAGEGATE_KEY`` is its admin
key and ``IMAGEGATE_DATA_DIR`` its data directory (for ``imagegate keys …``).

Only blocks tagged ``tested`` run (opt-in), so sections that show a long-running server, a
placeholder such as ``ig-...``, an external service or ``make check`` itself stay plain
```` ```sh ````; the README's Development section states the convention.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from imagegate.app import create_app
from imagegate.providers.fakes import serve_in_thread
from imagegate.settings import Settings
from tests.conftest import ADMIN_KEY

README = Path(__file__).resolve().parent.parent / "README.md"
DOCUMENTED_URL = "http://127.0.0.1:8000"
FENCE = re.compile(r"^```sh tested[ \t]*\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)
MIN_BLOCKS = 15
"""Fewer tested blocks than this means the fence syntax broke, not that the README shrank."""


@dataclass(frozen=True)
class Block:
    line: int
    code: str


def readme_blocks(text: str) -> list[Block]:
    return [
        Block(text.count("\n", 0, match.start()) + 1, match.group(1))
        for match in FENCE.finditer(text)
    ]


def script(blocks: list[Block], base_url: str) -> str:
    parts = [
        "set -euo pipefail",
        # A README curl without --fail-with-body still fails the test on an HTTP error.
        'curl() { command curl --fail-with-body "$@"; }',
    ]
    for block in blocks:
        parts.append(f"echo '>>> README.md line {block.line}' >&2")
        parts.append(block.code.replace(DOCUMENTED_URL, base_url))
    return "\n".join(parts) + "\n"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    data_dir = tmp_path_factory.mktemp("readme-data")
    app = create_app(Settings(data_dir=data_dir, admin_key=ADMIN_KEY))
    running = serve_in_thread(app, lifespan="on")
    yield running.base_url, data_dir
    running.stop()


def test_fence_finder() -> None:
    text = "a\n```sh tested\necho 1\n```\n```sh\nnot run\n```\n```sh tested\necho 2\n```\n"
    assert [(b.line, b.code) for b in readme_blocks(text)] == [(2, "echo 1\n"), (8, "echo 2\n")]


def test_readme_runs_as_written(server: tuple[str, Path], tmp_path: Path) -> None:
    if shutil.which("curl") is None or shutil.which("bash") is None:
        pytest.fail("the README examples need bash and curl (.ci/run installs curl)")
    blocks = readme_blocks(README.read_text())
    assert len(blocks) >= MIN_BLOCKS
    base_url, data_dir = server
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("IMAGEGATE_")},
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "IMAGEGATE_KEY": ADMIN_KEY,
        "IMAGEGATE_BASE_URL": base_url,
        "IMAGEGATE_DATA_DIR": str(data_dir),
        "IMAGEGATE_GC_TUNING": "false",
        "COLUMNS": "120",
    }
    done = subprocess.run(
        ["bash", "-c", script(blocks, base_url)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if done.returncode != 0:
        failed = [line for line in done.stderr.splitlines() if line.startswith(">>> README")]
        where = failed[-1] if failed else "before the first block"
        pytest.fail(
            f"the README block at {where.removeprefix('>>> ')} failed "
            f"(exit {done.returncode}):\n--- stderr ---\n{done.stderr[-3000:]}"
            f"\n--- stdout ---\n{done.stdout[-2000:]}"
        )
    for made in ("out.png", "photo.png", "mask.png", "edited.png", "grid.png", "upscaled.png"):
        assert (tmp_path / made).stat().st_size > 0, made
