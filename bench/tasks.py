"""Benchmark the **tasks** scenario: Midjourney-style submit + poll on the built-in renderer
against a live ``imagegate serve`` on SQLite; tasks per second end to end.

Usage: ``.venv/bin/python bench/tasks.py [--tasks N] [--clients C] [--workers W]
[--task-concurrency T] [--prompt TEXT] [--json PATH]``

A fresh server (temp data dir, SQLite) is started; ``--warmup`` tasks are run and discarded;
then ``--tasks`` imagine tasks are submitted by ``--clients`` concurrent clients while one
poller asks ``POST /mj/task/list-by-condition`` for every unfinished id every 200 ms. The clock
runs from the first submit to the poll that sees the last task SUCCESS. Afterwards the
database is read: every task must have succeeded (none lost), run once (``attempts = 1``),
stored exactly one image and have exactly one usage row (none charged twice).

Default prompt ``... --ar 1:1 --q .25``: each task renders four 256×256 pictures (the smallest
size the sketch model declares) and composes them into one 512×512 PNG grid; ``--route
shorten`` runs text-only tasks instead, to measure the task machinery without rendering. The
requests-per-minute limit is lifted (``IMAGEGATE_DEFAULT_RPM``) so the figure measures the task
path, not the limiter; the per-key queue limit (``mj_queue_limit``, 200 waiting tasks) stays,
and submitters back off on code 23 as a client would. The target is ≥ 300 tasks/s.

``--route flux`` submits Flux-style tasks instead (``POST /flux/v1/sketch``, one 256×256 PNG,
the smallest size the sketch model declares) and polls each unfinished one with ``GET
/flux/v1/get_result`` every ``--flux-poll`` seconds (0.5 s, as BFL's own examples do).

The client is aiohttp (a fraction of httpx's CPU per request): it shares the machine with the
server, and its cost is not the gateway's.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp
import httpx

ADMIN = "bench-admin-key-0123456789abcdef"
TARGET = 300.0
POLL_SECONDS = 0.2
PROMPT = "a red house under a yellow sun by the blue sea --ar 1:1 --q .25"


def machine() -> dict[str, object]:
    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "python": sys.version.split()[0],
    }


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(data_dir: Path, port: int, args: argparse.Namespace) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("IMAGEGATE_")}
    env |= {
        "IMAGEGATE_ADMIN_KEY": ADMIN,
        "IMAGEGATE_DEFAULT_RPM": "100000000",
        "IMAGEGATE_TASK_CONCURRENCY": str(args.task_concurrency),
        "IMAGEGATE_TASK_POLL_SECONDS": "0.05",
        "IMAGEGATE_LOG_LEVEL": "warning",
    }
    executable = Path(sys.executable).with_name("imagegate")
    command = [str(executable), "serve", "--port", str(port), "--data-dir", str(data_dir)]
    process = subprocess.Popen(
        [*command, "--workers", str(args.workers)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz").status_code == 200:
                return process
        except httpx.TransportError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError("the server did not start")
        time.sleep(0.05)


Client = aiohttp.ClientSession


async def post_json(client: Client, path: str, body: object) -> Any:
    async with client.post(path, json=body) as response:
        return await response.json(content_type=None)


async def submit_one(client: Client, args: argparse.Namespace) -> str:
    """Submit one task (backing off on a full queue as a client would); its id."""
    if args.route == "flux":
        body = {"prompt": args.prompt, "width": 256, "height": 256, "output_format": "png"}
        return str((await post_json(client, "/flux/v1/sketch", body))["id"])
    while True:
        answer = await post_json(client, f"/mj/submit/{args.route}", {"prompt": args.prompt})
        if answer["code"] in (1, 22):
            return str(answer["result"])
        if answer["code"] != 23:
            raise RuntimeError(f"submit refused: {answer}")
        await asyncio.sleep(1.0)  # queue full (code 23): back off as a client would


async def submit_all(
    client: Client, count: int, args: argparse.Namespace, submitted: dict[str, float]
) -> None:
    """Submit ``count`` tasks from ``clients`` coroutines, noting each id's submit time."""
    queue = iter(range(count))

    async def one_client() -> None:
        for _ in queue:
            submitted[await submit_one(client, args)] = time.perf_counter()

    await asyncio.gather(*(one_client() for _ in range(args.clients)))


async def poll_mj(client: Client, pending: list[str]) -> list[tuple[str, str]]:
    """One ``list-by-condition`` per 1000 ids: (id, status) of each."""
    seen: list[tuple[str, str]] = []
    for start in range(0, len(pending), 1000):
        batch = {"ids": pending[start : start + 1000]}
        tasks = await post_json(client, "/mj/task/list-by-condition", batch)
        seen += [(task["id"], MJ_STATUS.get(task["status"], "pending")) for task in tasks]
    return seen


async def poll_flux(client: Client, pending: list[str]) -> list[tuple[str, str]]:
    """One ``get_result`` per id, 32 at a time: (id, status) of each."""
    gate = asyncio.Semaphore(32)

    async def one(task_id: str) -> tuple[str, str]:
        async with gate, client.get("/flux/v1/get_result", params={"id": task_id}) as response:
            body = await response.json(content_type=None)
        return task_id, FLUX_STATUS.get(body["status"], "pending")

    return list(await asyncio.gather(*(one(task_id) for task_id in pending)))


MJ_STATUS = {"SUCCESS": "done", "FAILURE": "failed", "CANCEL": "failed"}
FLUX_STATUS = {"Ready": "done", "Error": "failed", "Task not found": "failed"}


async def poll_until_done(
    client: Client, submitted: dict[str, float], count: int, args: argparse.Namespace
) -> dict[str, float]:
    """Poll every known, unfinished id until ``count`` tasks succeeded; id → time seen done."""
    finished: dict[str, float] = {}
    poll, interval = (
        (poll_flux, args.flux_poll) if args.route == "flux" else (poll_mj, POLL_SECONDS)
    )
    while len(finished) < count:
        pending = [task_id for task_id in list(submitted) if task_id not in finished]
        for task_id, status in await poll(client, pending):
            if status == "done":
                finished[task_id] = time.perf_counter()
            elif status == "failed":
                raise RuntimeError(f"task {task_id} failed")
        await asyncio.sleep(interval)
    return finished


async def run(base_url: str, key: str, count: int, args: argparse.Namespace) -> dict[str, object]:
    connector = aiohttp.TCPConnector(limit=args.clients + 32)
    headers = {"Authorization": f"Bearer {key}"}
    submitted: dict[str, float] = {}
    timeout = aiohttp.ClientTimeout(total=120)
    async with aiohttp.ClientSession(
        base_url=base_url, headers=headers, connector=connector, timeout=timeout
    ) as client:
        started = time.perf_counter()
        submitting = submit_all(client, count, args, submitted)
        polling = poll_until_done(client, submitted, count, args)
        _, finished = await asyncio.gather(submitting, polling)
        elapsed = time.perf_counter() - started
    latencies = sorted((finished[t] - submitted[t]) * 1000 for t in submitted)
    return {
        "ids": list(submitted),
        "tasks": count,
        "seconds": elapsed,
        "tasks_per_second": count / elapsed,
        "submit_seconds": max(submitted.values()) - started,
        "latency_p50_ms": statistics.median(latencies),
        "latency_p99_ms": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))],
    }


def audit(db_path: Path, ids: list[str], kind: str, images: int) -> dict[str, object]:
    """None lost, none run twice, ``images`` stored images and one usage row each."""
    with sqlite3.connect(db_path) as db:
        query = "SELECT id, status, attempts FROM tasks WHERE kind = ?"
        rows = db.execute(query, (kind,)).fetchall()
        assets = Counter(r[0] for r in db.execute("SELECT request_id FROM assets"))
        usage = Counter(r[0] for r in db.execute("SELECT request_id FROM usage"))
    by_id = {row[0]: row for row in rows}
    return {
        "lost": sum(1 for t in ids if by_id.get(t, (t, "missing"))[1] != "succeeded"),
        "run_twice": sum(1 for t in ids if by_id[t][2] != 1),
        "wrong_image_count": sum(1 for t in ids if assets[t] != images),
        "charges_not_one": sum(1 for t in ids if usage[t] != 1),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=2000)
    parser.add_argument("--warmup", type=int, default=100)
    parser.add_argument("--clients", type=int, default=32, help="concurrent submitters")
    parser.add_argument("--workers", type=int, default=1, help="server worker processes")
    parser.add_argument("--task-concurrency", type=int, default=8, help="tasks per process")
    parser.add_argument("--prompt", default=PROMPT)
    parser.add_argument(
        "--route",
        choices=["imagine", "shorten", "flux"],
        default="imagine",
        help="shorten renders nothing: it measures the task machinery alone; flux renders "
        "one 256x256 picture per task",
    )
    parser.add_argument("--flux-poll", type=float, default=0.5, help="seconds between polls")
    parser.add_argument("--json", type=Path, help="also write the results here as JSON")
    args = parser.parse_args()
    info = machine()
    for name, value in info.items():
        print(f"{name:>10}: {value}")
    with tempfile.TemporaryDirectory(prefix="imagegate-bench-") as tmp:
        data_dir, port = Path(tmp) / "data", free_port()
        server = start_server(data_dir, port, args)
        try:
            base_url = f"http://127.0.0.1:{port}"
            created = httpx.post(
                f"{base_url}/admin/keys",
                json={"name": "bench"},
                headers={"Authorization": f"Bearer {ADMIN}"},
            )
            key = created.json()["key"]
            asyncio.run(run(base_url, key, args.warmup, args))
            result = asyncio.run(run(base_url, key, args.tasks, args))
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(30)
        ids = result.pop("ids")
        kind = "image" if args.route == "flux" else "mj"
        images = 0 if args.route == "shorten" else 1
        checks = audit(data_dir / "imagegate.db", ids, kind, images)  # type: ignore[arg-type]
    report = {"machine": info, "settings": vars(args) | {"json": None}, **result, **checks}
    print(
        f"\n{args.tasks} {args.route} tasks, {args.clients} clients, {args.workers} worker(s) × "
        f"{args.task_concurrency} tasks, prompt {args.prompt!r}\n"
    )
    print(f"{'tasks/s':>10}{'seconds':>10}{'p50 ms':>10}{'p99 ms':>10}  lost  twice")
    print(
        f"{result['tasks_per_second']:>10.1f}{result['seconds']:>10.2f}"
        f"{result['latency_p50_ms']:>10.0f}{result['latency_p99_ms']:>10.0f}"
        f"{checks['lost']:>6}{checks['run_twice']:>7}"
    )
    ok = not any(checks.values())
    rate = float(result["tasks_per_second"])  # type: ignore[arg-type]
    print(f"\n{'OK' if rate >= TARGET else 'UNDER'} vs target {TARGET:.0f} tasks/s; audit {ok}")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
