"""Async-submit scenario: what ``Prefer: respond-async`` adds over a synchronous call's admission.

Usage: ``.venv/bin/python bench/async_submit.py [--requests N] [--json PATH]``

One in-process gateway (SQLite, temp data dir). ``--requests`` synchronous and as many async
generations on the built-in renderer are sent one at a time, interleaved, through the ASGI app.
Server-side clocks, from the moment the image route starts:

- **sync admission**: until the request is parsed, validated, rate-checked and held, i.e. when
  ``ImageService.run`` is about to call the upstream;
- **async submit**: until the 202 ``image.task`` body is ready (the same admission, plus the
  task row and its hold written).

The task workers are held back while measuring, so no drawing competes with the submits. The
target is an added p50 (async submit p50 − sync admission p50) under 10 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import contextvars
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx

from imagegate.app import create_app
from imagegate.fronts.openai import images
from imagegate.settings import Settings

TARGET_MS = 10.0
ADMIN = "bench-admin-key-0123456789abcdef"
BODY = {"model": "sketch", "prompt": "a red house under a yellow sun", "size": "256x256"}

_started: contextvars.ContextVar[float] = contextvars.ContextVar("started")


async def measure(requests: int) -> dict[str, Any]:
    admissions: list[float] = []
    submits: list[float] = []
    serve = images._serve

    async def timed_serve(*args: Any, **kwargs: Any) -> Any:
        _started.set(time.perf_counter())
        response = await serve(*args, **kwargs)
        if response.status_code == 202:
            submits.append((time.perf_counter() - _started.get()) * 1000)
        return response

    images._serve = timed_serve
    with tempfile.TemporaryDirectory() as data_dir:
        settings = Settings(
            data_dir=Path(data_dir),
            admin_key=ADMIN,
            default_rpm=100_000_000,
            gc_tuning=False,
        )
        app = create_app(settings)
        async with app.router.lifespan_context(app):
            services = app.state.services
            services.tasks.settings = replace(services.tasks.settings, concurrency=0)
            run: Callable[..., Awaitable[Any]] = services.images.run

            async def timed_run(prepared: Any) -> Any:
                admissions.append((time.perf_counter() - _started.get()) * 1000)
                return await run(prepared)

            services.images.run = timed_run
            _, key = await services.keys.create(name="bench")
            auth = {"Authorization": f"Bearer {key}"}
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
                for index in range(requests + 20):
                    if index == 20:  # warm-up done
                        admissions.clear()
                        submits.clear()
                    sync = await client.post("/v1/images/generations", json=BODY, headers=auth)
                    queued = await client.post(
                        "/v1/images/generations",
                        json=BODY,
                        headers={**auth, "Prefer": "respond-async"},
                    )
                    if (sync.status_code, queued.status_code) != (200, 202):
                        raise RuntimeError(f"unexpected answers: {sync.text} {queued.text}")
    images._serve = serve
    admission, submit = statistics.median(admissions), statistics.median(submits)
    return {
        "requests": requests,
        "sync_admission_p50_ms": round(admission, 3),
        "async_submit_p50_ms": round(submit, 3),
        "added_p50_ms": round(submit - admission, 3),
        "async_submit_p95_ms": round(statistics.quantiles(submits, n=20)[-1], 3),
        "target_added_p50_ms": TARGET_MS,
        "machine": {
            "platform": platform.platform(),
            "cpu_count": os.cpu_count(),
            "python": sys.version.split()[0],
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    result = asyncio.run(measure(args.requests))
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    if result["added_p50_ms"] >= TARGET_MS:
        sys.exit(f"async submit adds {result['added_p50_ms']} ms p50 (target < {TARGET_MS})")


if __name__ == "__main__":
    main()
