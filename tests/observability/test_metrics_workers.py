"""``imagegate serve --workers 2``: whichever worker answers a scrape, it counts every worker."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from imagegate.observability.multiproc import VARIABLE, multiprocess_dir
from tests.cli.test_serve import EXECUTABLE, free_port
from tests.observability.scrape import parse, value

ADMIN = "workers-admin-key-0123456789"
REQUESTS = 100
ROUNDS = 20


@pytest.fixture
def two_workers(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    port = free_port()
    metrics_dir = tmp_path / "metrics"
    metrics_dir.mkdir()
    (metrics_dir / "counter_999999.db").write_bytes(b"stale series from an earlier run")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("IMAGEGATE_", "OTEL_"))}
    env |= {"IMAGEGATE_ADMIN_KEY": ADMIN, VARIABLE: str(metrics_dir)}
    command = ["serve", "--workers", "2", "--port", str(port), "--data-dir", str(tmp_path / "d")]
    process = subprocess.Popen(
        [str(EXECUTABLE), *command],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    base_url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"{base_url}/readyz").status_code == 200:
                break
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline or process.poll() is not None:
            process.kill()
            pytest.fail(f"server did not become ready: {process.communicate()[0]}")
        time.sleep(0.1)
    yield base_url, metrics_dir
    process.send_signal(signal.SIGTERM)
    process.communicate(timeout=30)


async def _load(base_url: str) -> None:
    """Many connections at once, so that both workers are likely to accept some."""
    limits = httpx.Limits(max_connections=50, max_keepalive_connections=0)
    async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=60) as client:
        answers = await asyncio.gather(*(client.get("/healthz") for _ in range(REQUESTS)))
    assert all(a.status_code == 200 for a in answers)


def _workers_that_served(metrics_dir: Path) -> set[str]:
    """A worker's counter file appears with the first series it records."""
    return {
        match.group(1)
        for path in metrics_dir.glob("counter_*.db")
        if (match := re.fullmatch(r"counter_(\d+)\.db", path.name))
    }


def test_every_scrape_counts_the_requests_of_both_workers(two_workers: tuple[str, Path]) -> None:
    base_url, metrics_dir = two_workers
    sent = 0
    # The kernel hands each connection to whichever worker accepts first; on a busy machine
    # one may take a whole burst, so bursts go on (a bounded number) until both have served.
    for _ in range(ROUNDS):
        asyncio.run(_load(base_url))
        sent += REQUESTS
        workers = _workers_that_served(metrics_dir)
        assert "999999" not in workers  # the stale file was wiped before the workers started
        if len(workers) == 2:
            break
    assert len(workers) == 2, f"one worker took all {sent} requests: {workers}"

    seen = set()
    for _ in range(6):
        # A new connection each time: scrapes land on either worker.
        response = httpx.get(
            f"{base_url}/metrics", headers={"Authorization": f"Bearer {ADMIN}"}, timeout=60
        )
        assert response.status_code == 200
        samples = parse(response.text)
        healthz = {"route": "/healthz", "status": "200"}
        seen.add(value(samples, "imagegate_requests_total", healthz))
        assert value(samples, "imagegate_request_duration_seconds_count", {"route": "/healthz"})
    assert seen == {sent}


def test_serve_gives_several_workers_a_fresh_directory_and_removes_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(VARIABLE, raising=False)
    with multiprocess_dir(1) as none:
        assert none is None and VARIABLE not in os.environ
    with multiprocess_dir(2) as directory:
        assert directory is not None and directory.is_dir() and not any(directory.iterdir())
        assert os.environ[VARIABLE] == str(directory)
    assert not directory.exists() and VARIABLE not in os.environ


def test_the_worker_count_also_comes_from_the_environment() -> None:
    """Containers set ``IMAGEGATE_WORKERS`` (deploy/compose.yaml, the Helm chart)."""
    env = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1"}
    shown = subprocess.run(
        [str(EXECUTABLE), "serve", "--help"], capture_output=True, text=True, env=env, check=True
    ).stdout
    assert "IMAGEGATE_WORKERS" in shown


def test_an_operators_directory_is_emptied_even_for_one_worker(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "counter_1.db").write_bytes(b"old")
    (tmp_path / "keep.txt").write_text("not a series")
    monkeypatch.setenv(VARIABLE, str(tmp_path))
    with multiprocess_dir(1) as directory:
        assert directory == tmp_path
        assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.txt"]
    assert tmp_path.is_dir() and os.environ[VARIABLE] == str(tmp_path)
