"""Benchmark the routing layer alone: router + OpenAI adapter + output checks, no HTTP server,
no database — what ``core/routing`` and ``providers/`` add to a raw call on the shared
upstream client.

Usage: ``.venv/bin/python bench/router.py [--seconds 5] [--rounds 3] [--json PATH]``

The fake OpenAI upstream runs as its own process (as in ``bench/gateway.py``). In this process,
one uvloop event loop drives, interleaved round by round, (a) a raw POST on the shipped
upstream client and (b) ``Router.generate`` for ``gpt-image-1`` on the same client:

* **small** and **large**: 16 concurrent callers; req/s and p50/p99 of each; added = (b) − (a).
* **hold**: 1,000 concurrent calls to an upstream that answers after 2 s (client pool sized
  for them): RSS per in-flight call (peak − idle) and event-loop lag (10 ms probe).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import uvloop

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gateway import PYTHON, ROOT, free_port, process, rss_mb, wait_ready
from imagegate.core.catalog import load_catalog
from imagegate.core.params import GenerationParams, validate_generation
from imagegate.core.routing import Router
from imagegate.providers.downloads import ResultDownloader
from imagegate.providers.registry import ProviderRegistry
from imagegate.providers.upstream_client import UpstreamClient

Call = Callable[[], Awaitable[object]]


async def closed_loop(call: Call, seconds: float, concurrency: int) -> dict[str, float]:
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds

    async def worker() -> None:
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            await call()
            latencies.append((time.perf_counter() - started) * 1000)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    latencies.sort()
    return {
        "rps": len(latencies) / elapsed,
        "p50_ms": statistics.median(latencies),
        "p99_ms": latencies[int(len(latencies) * 0.99)],
    }


async def lag_probe(samples: list[float], stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    while not stop.is_set():
        before = loop.time()
        await asyncio.sleep(0.01)
        samples.append(max(0.0, loop.time() - before - 0.01) * 1000)


async def scenario(name: str, port: int, seconds: float, rounds: int) -> dict[str, object]:
    os.environ["OPENAI_API_KEY"] = "sk-fake-openai"
    os.environ["OPENAI_BASE_URL"] = f"http://127.0.0.1:{port}/v1"
    registry = ProviderRegistry()
    entry = load_catalog(registry).resolve("gpt-image-1")
    assert entry is not None
    request = validate_generation(entry, GenerationParams(prompt="x", model="gpt-image-1")).request
    url = f"http://127.0.0.1:{port}/v1/images/generations"
    hold = name == "hold"
    async with UpstreamClient(max_connections=2000) as http:
        router = Router(registry, http, downloader=ResultDownloader(http))

        async def raw() -> object:
            body = b'{"model": "gpt-image-1", "prompt": "x"}'
            async with http.open("POST", url, seconds=300, connect_seconds=10, content=body) as r:
                return b"".join([chunk async for chunk in r.aiter_bytes()])

        async def routed() -> object:
            return await router.generate(entry, request, "bench")

        if hold:
            return await hold_run(routed)
        await closed_loop(raw, 2, 16)
        await closed_loop(routed, 2, 16)
        runs: dict[str, list[dict[str, float]]] = {"raw": [], "router": []}
        for _ in range(rounds):
            runs["raw"].append(await closed_loop(raw, seconds, 16))
            runs["router"].append(await closed_loop(routed, seconds, 16))
    added = [
        (b["p50_ms"] - a["p50_ms"], b["p99_ms"] - a["p99_ms"])
        for a, b in zip(runs["raw"], runs["router"], strict=True)
    ]
    return {
        "scenario": name,
        "raw_rps": round(statistics.median(r["rps"] for r in runs["raw"]), 1),
        "router_rps": round(statistics.median(r["rps"] for r in runs["router"]), 1),
        "raw_p50_ms": round(statistics.median(r["p50_ms"] for r in runs["raw"]), 3),
        "router_p50_ms": round(statistics.median(r["p50_ms"] for r in runs["router"]), 3),
        "added_p50_ms": round(statistics.median(a for a, _ in added), 3),
        "added_p99_ms": round(statistics.median(b for _, b in added), 3),
    }


async def hold_run(routed: Call) -> dict[str, object]:
    await asyncio.gather(*(routed() for _ in range(20)))
    idle = rss_mb(os.getpid())
    peak = [idle]
    lags: list[float] = []
    stop = asyncio.Event()
    probe = asyncio.create_task(lag_probe(lags, stop))

    async def watch() -> None:
        while not stop.is_set():
            peak.append(rss_mb(os.getpid()))
            await asyncio.sleep(0.1)

    watcher = asyncio.create_task(watch())
    started = time.perf_counter()
    await asyncio.gather(*(routed() for _ in range(1000)))
    elapsed = time.perf_counter() - started
    stop.set()
    await probe
    await watcher
    lags.sort()
    return {
        "scenario": "hold",
        "in_flight": 1000,
        "seconds_for_1000": round(elapsed, 2),
        "rss_idle_mb": round(idle, 1),
        "rss_peak_mb": round(max(peak), 1),
        "rss_per_in_flight_kb": round((max(peak) - idle) * 1024 / 1000, 1),
        "loop_lag_p99_ms": round(lags[int(len(lags) * 0.99)], 2) if lags else None,
        "loop_lag_max_ms": round(lags[-1], 2) if lags else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scenarios", default="small,large,hold")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    sizes = {"small": (0, 0.0), "large": (1_500_000, 0.0), "hold": (0, 2.0)}
    rows = []
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    for name in args.scenarios.split(","):
        b64, delay = sizes[name]
        port = free_port()
        fake = [
            PYTHON,
            "-m",
            "imagegate.providers.fakes",
            "openai",
            "--port",
            str(port),
            "--b64-bytes",
            str(b64),
            "--delay",
            str(delay),
        ]
        with process(fake, env):
            wait_ready(f"http://127.0.0.1:{port}/v1/models/x")
            row = uvloop.run(scenario(name, port, args.seconds, args.rounds))
        rows.append(row)
        print(json.dumps(row), flush=True)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
