"""Benchmark the web console's page render time with a busy key: 10,000 usage rows over the
last 30 days and 2,000 gallery images, on SQLite (the default store).

Usage: ``.venv/bin/python bench/console.py [--usage N] [--images N] [--runs N] [--json PATH]``

The gateway runs in process (ASGI, no socket: the figure is the server's time to answer, every
middleware included). Rows are inserted straight into the tables (each image linked to a usage
row, as a generation leaves them), a browser session is signed in, then each page is fetched
``--runs`` times after one warm-up; median and p95 are printed per page. Target: < 150 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import secrets
import statistics
import tempfile
import time
from decimal import Decimal
from pathlib import Path

import httpx

from imagegate.app import create_app
from imagegate.services import Services
from imagegate.settings import Settings
from imagegate.storage.tables import assets, usage

PAGES = (
    "/console/usage",
    "/console/gallery",
    "/console/gallery?page=20",
    "/console/tasks",
    "/console/playground",
    "/console/models",
)
TARGET_MS = 150.0
ORIGIN = "http://bench.test"


async def seed(services: Services, key_id: str, usage_rows: int, images: int) -> None:
    now = time.time()
    rows = [
        {
            "request_id": f"req_bench_{i}",
            "key_id": key_id,
            "model": ("sketch", "gpt-image-1", "flux-dev")[i % 3],
            "route": "/v1/images/generations",
            "n": 1,
            "images": 1,
            "size": "1024x1024",
            "quality": "medium",
            "cost_usd": Decimal("0.042"),
            "status": 200 if i % 50 else 429,
            "latency_ms": 120.0,
            "created_at": now - (i / usage_rows) * 30 * 86400,
        }
        for i in range(usage_rows)
    ]
    pictures = [
        {
            "id": "asset_" + secrets.token_urlsafe(18),
            "sha256": f"{i:064x}",
            "content_type": "image/png",
            "size_bytes": 1000,
            "width": 1024,
            "height": 1024,
            "owner_key_id": key_id,
            "request_id": f"req_bench_{i}",
            "prompt": f"a red house under a yellow sun, take {i}",
            "created_at": now - i * 60,
        }
        for i in range(images)
    ]
    async with services.engine.begin() as conn:
        await conn.execute(usage.insert(), rows)
        await conn.execute(assets.insert(), pictures)


async def main(args: argparse.Namespace) -> dict[str, dict[str, float]]:
    data = Path(tempfile.mkdtemp(prefix="imagegate-console-bench-"))
    app = create_app(Settings(data_dir=data, admin_key=None, gc_tuning=False))
    results: dict[str, dict[str, float]] = {}
    async with app.router.lifespan_context(app):
        services: Services = app.state.services
        key, secret = await services.keys.create(name="busy")
        await seed(services, key.id, args.usage, args.images)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=ORIGIN) as client:
            form = (await client.get("/console/sign-in")).text
            token = re.search(r'name="csrf_token" value="([^"]+)"', form)
            assert token is not None
            signed = await client.post(
                "/console/sign-in",
                data={"csrf_token": token.group(1), "api_key": secret},
                headers={"origin": ORIGIN},
            )
            assert signed.status_code == 303, signed.text
            for page in PAGES:
                await client.get(page)  # warm-up: templates compiled, caches filled
                times = []
                for _ in range(args.runs):
                    started = time.perf_counter()
                    response = await client.get(page)
                    times.append((time.perf_counter() - started) * 1000)
                    assert response.status_code == 200, (page, response.status_code)
                times.sort()
                results[page] = {
                    "median_ms": round(statistics.median(times), 1),
                    "p95_ms": round(times[int(len(times) * 0.95) - 1], 1),
                }
    return results


def cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--usage", type=int, default=10_000)
    parser.add_argument("--images", type=int, default=2_000)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    results = asyncio.run(main(args))
    print(f"{args.usage} usage rows, {args.images} images, {args.runs} runs per page")
    for page, figures in results.items():
        mark = "ok" if figures["p95_ms"] < TARGET_MS else "SLOW"
        median, p95 = figures["median_ms"], figures["p95_ms"]
        print(f"{page:32} median {median:7.1f} ms  p95 {p95:7.1f} ms  {mark}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    cli()
