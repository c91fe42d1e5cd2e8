"""Run a fake upstream on loopback: in a thread (tests) or as its own process (bench, and
people trying the provider paths offline).

``python -m imagegate.providers.fakes openai --port 9100 --api-key sk-test`` serves a fake
OpenAI that accepts only that key (each kind's ``--help`` line names its default key and the
variables that point imagegate at it). ``--b64-bytes 1500000`` makes every generation answer
the same precomputed body (a realistic ``b64_json`` PNG of about that size).
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
from imagegate.providers.fakes.selfhosted import FakeA1111, FakeComfyUI
from imagegate.providers.fakes.stability import FakeStability
from imagegate.providers.fakes.studios import FakeDashScope, FakeIdeogram, FakeKling, FakeRecraft
from imagegate.providers.fakes.tasks import FakeBFL, FakeFal, FakeReplicate

__all__ = ["FAKES", "KINDS", "RunningServer", "main", "serve_in_thread"]

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
    "a1111": FakeA1111,
    "comfyui": FakeComfyUI,
    "dashscope": FakeDashScope,
    "ideogram": FakeIdeogram,
    "recraft": FakeRecraft,
    "kling": FakeKling,
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


@dataclass(frozen=True, slots=True)
class Kind:
    """How one fake is started and how imagegate is pointed at it (for ``--help``)."""

    speaks: str
    default_key: str
    point: str
    """The environment that sends imagegate's requests to this fake, ``{url}`` its address."""
    make: Callable[[str], FakeUpstream]


KINDS: dict[str, Kind] = {
    "openai": Kind(
        "OpenAI Images (generations, edits, variations, SSE) and Azure deployment paths",
        "sk-fake-openai",
        "OPENAI_BASE_URL={url}/v1 OPENAI_API_KEY={key} (models gpt-image-1, dall-e-*)",
        lambda key: FakeOpenAI(key),
    ),
    "gemini": Kind(
        "Gemini generateContent and Imagen predict (key in x-goog-api-key)",
        "fake-gemini-key",
        "GOOGLE_GEMINI_BASE_URL={url} GEMINI_API_KEY={key} (gemini-*, imagen-*)",
        lambda key: FakeGemini(key),
    ),
    "bfl": Kind(
        "Black Forest Labs tasks: submit, get_result polling, credits (key in x-key)",
        "fake-bfl-key",
        "BFL_BASE_URL={url} BFL_API_KEY={key} (flux-*)",
        lambda key: FakeBFL(key),
    ),
    "replicate": Kind(
        "Replicate predictions with Prefer: wait, polling, cancel (Bearer token)",
        "r8_fake",
        "REPLICATE_API_TOKEN={key} and a deployment with base_url_env in IMAGEGATE_CONFIG",
        lambda key: FakeReplicate(key),
    ),
    "fal": Kind(
        "fal queue: submit, status, result, cancel (Authorization: Key …)",
        "fake-fal-key",
        "FAL_KEY={key} and a deployment with base_url_env in IMAGEGATE_CONFIG",
        lambda key: FakeFal(key),
    ),
    "midjourney": Kind(
        "a midjourney-proxy relay: submit, fetch, buttons, modal (key in mj-api-secret)",
        "fake-mj-secret",
        "MIDJOURNEY_PROXY_URL={url} MIDJOURNEY_PROXY_SECRET={key} (the /mj routes relay)",
        lambda key: FakeMidjourneyProxy(key),
    ),
    "dashscope": Kind(
        "DashScope image-synthesis tasks, task polling, qwen-image-edit (Bearer)",
        "sk-fake-dashscope",
        "DASHSCOPE_BASE_URL={url} DASHSCOPE_API_KEY={key} (qwen-image*, wan2.5-t2i-preview)",
        lambda key: FakeDashScope(key),
    ),
    "recraft": Kind(
        "Recraft generations (raster and SVG), vectorize, removeBackground (Bearer)",
        "fake-recraft-key",
        "RECRAFT_BASE_URL={url} RECRAFT_API_KEY={key} (recraft-v3, recraft-v3-svg)",
        lambda key: FakeRecraft(key),
    ),
}


def _epilog() -> str:
    lines = ["kinds (default key; how to point imagegate at it):"]
    for name, kind in KINDS.items():
        lines.append(f"  {name:<11} {kind.speaks}")
        lines.append(f"  {'':<11} key: {kind.default_key}")
        lines.append(f"  {'':<11} " + kind.point.format(url="http://HOST:PORT", key="KEY"))
    lines.append("Every fake accepts only its key (--api-key, or the default above).")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m imagegate.providers.fakes",
        description="Serve one fake upstream in the foreground: the provider's real wire "
        "format on loopback, answering with generated pictures; no account, no network.",
        epilog=_epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("kind", choices=sorted(KINDS), help="which provider to fake (below)")
    parser.add_argument("--host", default="127.0.0.1", help="interface (default %(default)s)")
    parser.add_argument("--port", type=int, default=9100, help="port (default %(default)s)")
    parser.add_argument(
        "--api-key", default=None, help="the only key the fake accepts (default: its own, below)"
    )
    parser.add_argument(
        "--b64-bytes", type=int, default=None, help="openai: every answer this big (bench)"
    )
    parser.add_argument(
        "--delay", type=float, default=0.0, help="openai: seconds per answer (default 0)"
    )
    args = parser.parse_args(argv)
    kind = KINDS[args.kind]
    key = args.api_key or kind.default_key
    fake: FakeUpstream
    if args.kind == "openai":
        fixed = fixed_generation(args.b64_bytes) if args.b64_bytes is not None else None
        fake = FakeOpenAI(key, fixed_body=fixed, delay=args.delay)
    else:
        fake = kind.make(key)
    url = f"http://{args.host}:{args.port}"
    print(f"fake {args.kind} on {url}, key {key}; point imagegate at it with:", flush=True)
    print("  " + kind.point.format(url=url, key=key), flush=True)
    uvicorn.run(
        fake.app,
        host=args.host,
        port=args.port,
        log_level="warning",
        access_log=False,
        lifespan="off",
        backlog=4096,
    )
