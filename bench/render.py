"""Benchmark the ``sketch`` renderer: milliseconds per 1024×1024 image, render plus encode.

Usage: ``.venv/bin/python bench/render.py [--rounds N] [--size WxH] [--json PATH]``

Each round renders every benchmark prompt once per format (a different variant each round,
so nothing is cached) and times render + encode of each image. A warm-up round is discarded.
Reports the median, 10th/90th percentiles and min/max per format; the target is ≤ 50 ms per
PNG at 1024×1024.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Literal

import PIL
from PIL import features

from imagegate.imaging.encode import encode_image
from imagegate.providers.local.draw import render

Format = Literal["png", "jpeg", "webp"]
PROMPTS = (
    "a red house under a yellow sun by the blue sea",
    "a night sky full of stars and a moon over snowy mountains and a lake",
    "a dense forest on green hills with clouds, birds and a rainbow",
    "sunset over the ocean with two boats and some flowers",
    "a red square, two blue circles, a green triangle and a pink heart",
    'a poster that says "Grand Opening" in purple and gold',
    "something abstract and dreamy",
)
CASES: tuple[tuple[str, Format, bool], ...] = (
    ("png", "png", False),
    ("jpeg", "jpeg", False),
    ("webp", "webp", False),
    ("png transparent", "png", True),
)
TARGET_PNG_MS = 50.0


def machine() -> dict[str, object]:
    """What the numbers were measured on."""
    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "python": sys.version.split()[0],
        "pillow": PIL.__version__,
        "zlib": features.version("zlib"),
        "libjpeg": features.version("jpg"),
        "libjpeg_turbo": features.version("libjpeg_turbo"),
        "libwebp": features.version("webp"),
    }


def time_case(
    fmt: Format, transparent: bool, size: tuple[int, int], rounds: int
) -> dict[str, float]:
    """Per-image timings (ms) for one format over ``rounds`` rounds of every prompt."""
    width, height = size
    totals: list[float] = []
    renders: list[float] = []
    sizes: list[int] = []
    for round_index in range(rounds + 1):
        for prompt in PROMPTS:
            start = time.perf_counter()
            image = render(
                prompt, width, height, seed=0, variant=round_index, transparent=transparent
            )
            drawn = time.perf_counter()
            data = encode_image(image.final, fmt)
            done = time.perf_counter()
            if round_index == 0:
                continue  # warm-up
            totals.append((done - start) * 1000)
            renders.append((drawn - start) * 1000)
            sizes.append(len(data))
    deciles = statistics.quantiles(totals, n=10)
    return {
        "median_ms": statistics.median(totals),
        "p10_ms": deciles[0],
        "p90_ms": deciles[-1],
        "min_ms": min(totals),
        "max_ms": max(totals),
        "render_median_ms": statistics.median(renders),
        "encode_median_ms": statistics.median(t - r for t, r in zip(totals, renders, strict=True)),
        "median_bytes": statistics.median(sizes),
        "samples": len(totals),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10, help="timed rounds (default 10)")
    parser.add_argument("--size", default="1024x1024", help="WIDTHxHEIGHT (default 1024x1024)")
    parser.add_argument("--json", type=Path, help="also write the results here as JSON")
    args = parser.parse_args()
    width, height = (int(part) for part in args.size.lower().split("x"))
    info = machine()
    for key, value in info.items():
        print(f"{key:>10}: {value}")
    print(
        f"\n{len(PROMPTS)} prompts × {args.rounds} rounds at {width}x{height}, warm-up discarded\n"
    )
    header = f"{'case':<16}{'median':>8}{'p10':>8}{'p90':>8}{'min':>8}{'max':>8}{'render':>8}"
    print(header + f"{'encode':>8}{'KiB':>8}")
    results = {}
    for name, fmt, transparent in CASES:
        stats = time_case(fmt, transparent, (width, height), args.rounds)
        results[name] = stats
        cells = "".join(
            f"{stats[key]:>8.1f}"
            for key in ("median_ms", "p10_ms", "p90_ms", "min_ms", "max_ms", "render_median_ms")
        )
        tail = f"{stats['encode_median_ms']:>8.1f}{stats['median_bytes'] / 1024:>8.0f}"
        print(f"{name:<16}{cells}{tail}")
    png = results["png"]["median_ms"]
    verdict = "OK" if png <= TARGET_PNG_MS else "OVER"
    print(f"\nPNG median {png:.1f} ms vs target {TARGET_PNG_MS:.0f} ms: {verdict}")
    report = {
        "machine": info,
        "size": f"{width}x{height}",
        "rounds": args.rounds,
        "results": results,
    }
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 0 if png <= TARGET_PNG_MS else 1


if __name__ == "__main__":
    raise SystemExit(main())
