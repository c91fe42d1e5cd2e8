"""Kill a real ``imagegate serve`` (SIGKILL) while Midjourney tasks run, restart it on the same
data dir: every task ends SUCCESS, none ran twice, each is charged exactly once."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import time
from collections import Counter
from decimal import Decimal
from pathlib import Path

import httpx

from imagegate.core.catalog import load_catalog
from imagegate.core.pricing import price
from imagegate.providers.local.usage import estimate_usage
from imagegate.providers.registry import ProviderRegistry
from tests.cli.test_serve import EXECUTABLE, free_port

ADMIN = "kill-test-admin-key-0123456789"
TASKS = 50
PROMPT = "a red house under a yellow sun by the blue sea"
FLAGS = "--q .5"
"""512×512 pictures: slow enough that the kill lands while tasks run."""


def start(data_dir: Path, port: int) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("IMAGEGATE_")}
    env |= {
        "IMAGEGATE_ADMIN_KEY": ADMIN,
        "IMAGEGATE_TASK_LEASE_SECONDS": "2",
        "IMAGEGATE_TASK_CONCURRENCY": "4",
        "IMAGEGATE_TASK_POLL_SECONDS": "0.1",
    }
    process = subprocess.Popen(
        [str(EXECUTABLE), "serve", "--port", str(port), "--data-dir", str(data_dir)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz").status_code == 200:
                return process
        except httpx.TransportError:
            pass
        assert process.poll() is None and time.monotonic() < deadline, "server did not start"
        time.sleep(0.05)


def statuses(client: httpx.Client, ids: list[str]) -> Counter[str]:
    tasks = client.post("/mj/task/list-by-condition", json={"ids": ids}).json()
    assert len(tasks) == len(ids)
    return Counter(task["status"] for task in tasks)


def expected_cost() -> Decimal:
    """The sketch's price for one grid: four 512×512 pictures of PROMPT at ``--q .5``."""
    entry = load_catalog(ProviderRegistry(), None).resolve("sketch")
    assert entry is not None
    usage = estimate_usage(PROMPT, 512, 512, "medium", 4)
    return price(entry.spec.pricing, usage, 4, "medium", "512x512", "IMAGINE", "fast").amount


def test_sigkill_mid_way_loses_nothing_and_runs_nothing_twice(tmp_path: Path) -> None:
    data_dir, port = tmp_path / "data", free_port()
    base_url = f"http://127.0.0.1:{port}"
    server = start(data_dir, port)
    try:
        admin = {"Authorization": f"Bearer {ADMIN}"}
        key = httpx.post(f"{base_url}/admin/keys", json={"name": "kill"}, headers=admin)
        auth = {"Authorization": f"Bearer {key.json()['key']}"}
        with httpx.Client(base_url=base_url, headers=auth, timeout=30) as client:
            ids = []
            for index in range(TASKS):
                body = {"prompt": f"{PROMPT} {FLAGS} --seed {index}"}
                answer = client.post("/mj/submit/imagine", json=body).json()
                assert answer["code"] in (1, 22), answer
                ids.append(answer["result"])
            while statuses(client, ids)["SUCCESS"] < TASKS // 5:
                time.sleep(0.02)
            server.send_signal(signal.SIGKILL)
            server.wait(10)
            at_kill = _db_statuses(data_dir)
            assert at_kill["succeeded"] < TASKS and at_kill["running"] >= 1, at_kill

            server = start(data_dir, port)
            deadline = time.monotonic() + 45
            while (done := statuses(client, ids))["SUCCESS"] < TASKS:
                assert not done["FAILURE"] and not done["CANCEL"], done
                assert time.monotonic() < deadline, done
                time.sleep(0.1)
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(15)

    with sqlite3.connect(data_dir / "imagegate.db") as db:
        assets = Counter(row[0] for row in db.execute("SELECT request_id FROM assets"))
        charges = db.execute("SELECT request_id, cost_usd FROM usage WHERE route = 'task:mj'")
        usage = [(request_id, Decimal(str(cost))) for request_id, cost in charges]
        retried = db.execute("SELECT count(*) FROM tasks WHERE attempts > 1").fetchone()[0]
    assert {task_id: assets[task_id] for task_id in ids} == dict.fromkeys(ids, 1)
    assert sorted(request_id for request_id, _ in usage) == sorted(ids)
    assert {cost for _, cost in usage} == {expected_cost()}
    assert retried >= 1  # the tasks the kill interrupted ran again, and completed once


def _db_statuses(data_dir: Path) -> Counter[str]:
    with sqlite3.connect(data_dir / "imagegate.db") as db:
        return Counter(row[0] for row in db.execute("SELECT status FROM tasks"))
