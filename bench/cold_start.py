"""Cold start: seconds from ``imagegate serve`` to the first 200 on ``/readyz``.

Runs a fresh data dir (first start: migrations, secret, admin key) and a warm one, several rounds,
and prints a table plus JSON. Target: ≤ 2 s.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

EXECUTABLE = Path(sys.executable).with_name("imagegate")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def one_start(data_dir: Path) -> float:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("IMAGEGATE_")}
    started = time.perf_counter()
    process = subprocess.Popen(
        [str(EXECUTABLE), "serve", "--port", str(port), "--data-dir", str(data_dir)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    try:
        with httpx.Client() as client:
            while True:
                try:
                    if client.get(f"http://127.0.0.1:{port}/readyz").status_code == 200:
                        return time.perf_counter() - started
                except httpx.TransportError:
                    pass
                if process.poll() is not None:
                    raise RuntimeError("server exited before becoming ready")
                time.sleep(0.005)
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(15)


def summary(samples: list[float]) -> dict[str, float]:
    return {"median": statistics.median(samples), "min": min(samples), "max": max(samples)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    fresh, warm = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for index in range(args.rounds):
            fresh.append(one_start(Path(tmp) / f"fresh-{index}"))
        warm_dir = Path(tmp) / "warm"
        one_start(warm_dir)
        for _ in range(args.rounds):
            warm.append(one_start(warm_dir))
    report = {
        "scenario": "cold_start",
        "machine": f"{platform.machine()}, {os.cpu_count()} cpus",
        "python": platform.python_version(),
        "target_s": 2.0,
        "fresh_data_dir_s": summary(fresh),
        "warm_data_dir_s": summary(warm),
    }
    print(f"{'cold start':<22}{'median s':>10}{'min':>8}{'max':>8}")
    for name in ("fresh_data_dir_s", "warm_data_dir_s"):
        row = report[name]
        assert isinstance(row, dict)
        print(f"{name:<22}{row['median']:>10.3f}{row['min']:>8.3f}{row['max']:>8.3f}")
    text = json.dumps(report, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text)


if __name__ == "__main__":
    main()
