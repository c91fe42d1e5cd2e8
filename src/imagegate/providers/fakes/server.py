"""Run a fake upstream on loopback: in a thread (tests) or as its own process (bench).

``python -m imagegate.providers.fakes openai --port 9100 --b64-bytes 1500000 --delay 0``
serves a fake OpenAI whose generations all answer the same precomputed body (a realistic
``b64_json`` PNG of about that size); without ``--b64-bytes`` it answers like the test fake.
"""

from __future__ import annotations

import argparse
import socket
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import orjson
import pybase64
import uvicorn
from starlette.types import ASGIApp

from imagegate.providers.fakes.ark import FakeArk, FakeXAI
from imagegate.providers.fakes.bria import FakeBria
from imagegate.providers.fakes.gemini import FakeGemini
from imagegate.providers.fakes.images import image_bytes, noise_png
from imagegate.providers.fakes.midjourney import FakeMidjourneyProxy
from imagegate.providers.fakes.openai import FakeOpenAI
from imagegate.providers.fakes.script import FakeUpstream
from imagegate.providers.fakes.stability import FakeStability
from imagegate.providers.fakes.tasks import FakeBFL, FakeFal, FakeReplicate

__all__ = ["FAKES", "RunningServer", "main", "serve_in_thread"]

FAKES: dict[str, Callable[[], FakeUpstream]] = {
    "openai": FakeOpenAI,
    "gemini": FakeGemini,
    "bfl": FakeBFL,
    "replicate": FakeReplicate,
    "fal": FakeFal,
    "midjourney": FakeMidjourneyProxy,
    "bria": FakeBria,
    "stability": FakeStability,
    "ark": FakeArk,
    "xai": FakeXAI,
}


@dataclass
class RunningServer:
    """A server in a background thread; :meth:`stop` ends it."""

    base_url: str
    server: uvicorn.Server
    thread: threading.Thread
    sock: socket.socket

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)
        self.sock.close()


def serve_in_thread(
    app: ASGIApp, host: str = "127.0.0.1", *, lifespan: Literal["on", "off"] = "off"
) -> RunningServer:
    """Serve ``app`` on a free loopback port until :meth:`RunningServer.stop` (``lifespan="on"``
    for an app that builds its services at startup, such as the gateway itself)."""
    sock = socket.socket()
    sock.bind((host, 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="critical", lifespan=lifespan, access_log=False)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("the fake upstream did not start")
        time.sleep(0.01)
    return RunningServer(f"http://{host}:{port}", server, thread, sock)


def fixed_generation(payload_bytes: int) -> bytes:
    """An OpenAI generations body with one ``b64_json`` PNG of about ``payload_bytes`` bytes
    of base64 (``0`` or less: a tiny 64×64 PNG, about 1 KB of body)."""
    png = noise_png(payload_bytes * 3 // 4) if payload_bytes > 0 else image_bytes(64, 64, "png")
    body = {
        "created": 1779872000,
        "data": [{"b64_json": pybase64.b64encode(png).decode()}],
        "background": "opaque",
        "output_format": "png",
        "quality": "low",
        "size": "1024x1024",
        "usage": {
            "input_tokens": 19,
            "input_tokens_details": {"image_tokens": 0, "text_tokens": 19},
            "output_tokens": 196,
            "output_tokens_details": {"image_tokens": 196, "text_tokens": 0},
            "total_tokens": 215,
        },
    }
    return orjson.dumps(body)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m imagegate.providers.fakes")
    parser.add_argument("kind", choices=sorted(FAKES))
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9100)
    parser.add_argument("--b64-bytes", type=int, default=None, help="openai: fixed body size")
    parser.add_argument("--delay", type=float, default=0.0, help="openai: seconds per answer")
    parser.add_argument("--api-key", default=None)
    args = parser.parse_args(argv)
    fake: FakeUpstream
    if args.kind == "openai":
        fixed = fixed_generation(args.b64_bytes) if args.b64_bytes is not None else None
        fake = FakeOpenAI(args.api_key or "sk-fake-openai", fixed_body=fixed, delay=args.delay)
    else:
        fake = FAKES[args.kind]()
    uvicorn.run(
        fake.app,
        host=args.host,
        port=args.port,
        log_level="warning",
        access_log=False,
        lifespan="off",
        backlog=4096,
    )
