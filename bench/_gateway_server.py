"""Run one imagegate worker for ``bench/gateway.py``, with an event-loop lag probe.

Configured entirely by the environment (``IMAGEGATE_*`` and the provider variables), like
``imagegate serve`` with one worker (uvloop, httptools, no access log, the same allocator
thresholds). Extra, for the bench:

* ``BENCH_LAG_FILE``: every second, one JSON line ``{"t", "n", "p50_ms", "p99_ms",
  "max_ms", "samples_ms"}`` with how late a 10 ms ``asyncio.sleep`` woke up during that
  second;
* ``BENCH_CPROFILE``: a path; SIGUSR1 starts :mod:`cProfile` on the event loop's thread and
  SIGUSR2 stops it and writes its stats there (``bench/cost.py --cprofile``).
"""

from __future__ import annotations

import asyncio
import cProfile
import os
import signal
import statistics
import time
from typing import Any

import orjson
import uvicorn

from imagegate.app import create_app
from imagegate.imaging.budget import tune_allocator
from imagegate.settings import Settings


async def _probe(path: str) -> None:
    loop = asyncio.get_running_loop()
    window: list[float] = []
    started = time.time()
    with open(path, "a", encoding="utf-8") as out:  # noqa: ASYNC230 - one line a second
        while True:
            before = loop.time()
            await asyncio.sleep(0.01)
            window.append(max(0.0, loop.time() - before - 0.01) * 1000)
            if time.time() - started >= 1.0:
                ordered = sorted(window)
                line = {
                    "t": time.time(),
                    "n": len(ordered),
                    "p50_ms": statistics.median(ordered),
                    "p99_ms": ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))],
                    "max_ms": ordered[-1],
                    "samples_ms": [round(lag, 2) for lag in window],
                }
                out.write(orjson.dumps(line).decode() + "\n")
                out.flush()
                window, started = [], time.time()


def _profile_on_signals(path: str) -> None:
    profiler = cProfile.Profile()
    signal.signal(signal.SIGUSR1, lambda *_: profiler.enable())

    def stop(*_: object) -> None:
        profiler.disable()
        profiler.dump_stats(path)

    signal.signal(signal.SIGUSR2, stop)


def main() -> None:
    tune_allocator()  # as imagegate serve does
    app = create_app(Settings())
    if os.environ.get("BENCH_CPROFILE"):
        _profile_on_signals(os.environ["BENCH_CPROFILE"])
    lag_file = os.environ.get("BENCH_LAG_FILE")
    probe: list[asyncio.Task[None]] = []

    async def wrapped(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan" and lag_file and not probe:
            probe.append(asyncio.get_running_loop().create_task(_probe(lag_file)))
        await app(scope, receive, send)

    uvicorn.run(
        wrapped,
        host="127.0.0.1",
        port=int(os.environ["BENCH_PORT"]),
        loop="uvloop",
        http="httptools",
        access_log=False,
        log_level="warning",
        backlog=4096,
    )


if __name__ == "__main__":
    main()
