"""Edit scenario: a multipart edit with a ~4 MB PNG input and a mask through a live gateway.

Reports the end-to-end latency, the built-in renderer's own time for the same edit (called
directly, in this process, on the already-checked input), the difference (what the gateway adds:
upload parsing, the input pipeline, storage, response encoding) and the server's peak RSS.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import platform
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from PIL import Image

from imagegate.core.requests import ImageRequest
from imagegate.core.upstream import ProviderContext
from imagegate.imaging.inspect import inspect_image
from imagegate.imaging.limits import ImageLimits
from imagegate.providers.local import LocalProvider

EXECUTABLE = Path(sys.executable).with_name("imagegate")
ADMIN_KEY = "bench-admin-key-0123456789abcdef"
SIDE = 1320


def photo_png() -> bytes:
    """~4 MB: noisy pixels compress badly, like a photo."""
    rng = random.Random(7)
    image = Image.frombytes("RGB", (SIDE, SIDE), rng.randbytes(SIDE * SIDE * 3))
    image = image.resize((SIDE // 2, SIDE // 2)).resize((SIDE, SIDE))
    buffer = io.BytesIO()
    image.save(buffer, "PNG", compress_level=1)
    return buffer.getvalue()


def mask_png() -> bytes:
    image = Image.new("RGBA", (SIDE, SIDE), (0, 0, 0, 255))
    image.paste((0, 0, 0, 0), (SIDE // 4, SIDE // 4, 3 * SIDE // 4, 3 * SIDE // 4))
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def direct_ms(photo: bytes, mask: bytes, rounds: int) -> list[float]:
    limits = ImageLimits()
    image = inspect_image(photo, param="image", limits=limits)
    mask_image = inspect_image(mask, param="mask", limits=limits)
    request = ImageRequest(
        operation="edit",
        model="sketch",
        prompt="a red circle and a yellow sun",
        n=1,
        width=1024,
        height=1024,
        quality="auto",
        output_format="png",
        background="auto",
        images=(image,),
        mask=mask_image,
    )
    provider = LocalProvider()
    context = ProviderContext(http=None, request_id="bench", upstream_model="sketch")

    async def run() -> list[float]:
        samples = []
        for _ in range(rounds):
            started = time.perf_counter()
            await provider.generate(request, context)
            samples.append((time.perf_counter() - started) * 1000)
        return samples

    return asyncio.run(run())


def gateway_ms(photo: bytes, mask: bytes, rounds: int) -> tuple[list[float], float]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("IMAGEGATE_")}
    with tempfile.TemporaryDirectory() as data_dir:
        env.update(IMAGEGATE_ADMIN_KEY=ADMIN_KEY, IMAGEGATE_LOG_LEVEL="warning")
        process = subprocess.Popen(
            [str(EXECUTABLE), "serve", "--port", str(port), "--data-dir", data_dir],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=env,
        )
        try:
            return _measure(port, photo, mask, rounds), peak_rss_mb(process.pid)
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(15)


def _measure(port: int, photo: bytes, mask: bytes, rounds: int) -> list[float]:
    base = f"http://127.0.0.1:{port}"
    with httpx.Client(timeout=120) as client:
        while True:
            try:
                if client.get(f"{base}/readyz").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.05)
        samples = []
        for _ in range(rounds):
            started = time.perf_counter()
            response = client.post(
                f"{base}/v1/images/edits",
                headers={"Authorization": f"Bearer {ADMIN_KEY}"},
                files=[
                    ("image", ("photo.png", photo, "image/png")),
                    ("mask", ("m.png", mask, "image/png")),
                ],
                data={
                    "model": "sketch",
                    "prompt": "a red circle and a yellow sun",
                    "size": "1024x1024",
                },
            )
            response.raise_for_status()
            samples.append((time.perf_counter() - started) * 1000)
        return samples[1:]  # the first request warms caches


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    photo, mask = photo_png(), mask_png()
    direct = direct_ms(photo, mask, args.rounds)[1:]
    through, rss = gateway_ms(photo, mask, args.rounds + 1)
    report = {
        "scenario": "edit",
        "machine": f"{platform.machine()}, {os.cpu_count()} cpus",
        "python": platform.python_version(),
        "input_png_mb": round(len(photo) / 1e6, 2),
        "gateway_ms_median": round(statistics.median(through), 1),
        "gateway_ms_spread": [round(min(through), 1), round(max(through), 1)],
        "renderer_ms_median": round(statistics.median(direct), 1),
        "added_ms_median": round(statistics.median(through) - statistics.median(direct), 1),
        "server_peak_rss_mb": round(rss, 1),
    }
    width = max(map(len, report))
    for name, value in report.items():
        print(f"{name:<{width}}  {value}")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
