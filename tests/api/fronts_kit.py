"""Shared by the Flux, Bria and Replicate tests: settings that let webhooks reach a loopback
receiver, two test-only catalogue entries served by the built-in renderer, image makers and a
poll loop."""

from __future__ import annotations

import asyncio
import base64
import io
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from PIL import Image

from imagegate.settings import Settings
from tests.conftest import ADMIN_KEY

TEST_MODELS = """
# 'plain' only draws from text, with Flux-style free sizes; 'toolbox' declares every feature so
# that the translation of each editing action can be checked whatever the renderer supports.
[[models]]
id = "plain"
name = "Plain test model"
provider = "imagegate"
provider_code = "local"
created = 1764115200
features = ["text-to-image"]

[models.generate]
sizes = ["1024x1024"]
size_range = { min_side = 256, max_side = 1440, multiple = 32 }
default_size = "1024x1024"
max_n = 4
qualities = ["auto"]
default_quality = "auto"
prompt_max_chars = 1000
extras = { seed = { type = "integer", minimum = 0 } }

[[models.deployments]]
provider = "local"
model = "sketch"

[[models]]
id = "toolbox"
name = "Every feature (test)"
provider = "imagegate"
provider_code = "local"
created = 1764115200
features = [
  "text-to-image", "image-edit", "inpainting", "outpainting", "upscale",
  "background-removal", "vector",
]

[models.generate]
sizes = ["256x256", "512x512", "1024x1024", "1792x1024", "1024x1792"]
default_size = "1024x1024"
max_n = 4
qualities = ["auto"]
default_quality = "auto"
backgrounds = ["auto", "opaque", "transparent"]
prompt_max_chars = 1000

[models.edit]
mask = true

[[models.deployments]]
provider = "local"
model = "sketch"
"""


def front_settings(tmp_path: Path) -> Settings:
    config = tmp_path / "models.toml"
    config.write_text(TEST_MODELS)
    return Settings(
        data_dir=tmp_path / "data",
        admin_key=ADMIN_KEY,
        config=config,
        outbound_allow=["127.0.0.1/32"],
        webhook_backoff_seconds=[0.2, 0.2],
    )


def encode(image: Image.Image, fmt: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt)
    return buffer.getvalue()


def data_uri(data: bytes, mime: str = "image/png") -> str:
    return f"data:{mime};base64," + base64.b64encode(data).decode()


def picture(size: tuple[int, int] = (256, 256)) -> bytes:
    """A PNG with a subject in the middle and a plain background."""
    image = Image.new("RGB", size, (40, 110, 200))
    width, height = size
    image.paste((240, 200, 40), (width // 4, height // 4, 3 * width // 4, 3 * height // 4))
    return encode(image)


def bria_mask(size: tuple[int, int], white: tuple[int, int, int, int]) -> bytes:
    """A Bria mask: black (keep) everywhere, white (edit) inside ``white``."""
    image = Image.new("L", size, 0)
    image.paste(255, white)
    return encode(image)


def decode(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


async def poll(
    fetch: Callable[[], Awaitable[dict[str, Any]]],
    done: Callable[[dict[str, Any]], bool],
    timeout: float = 15,
) -> dict[str, Any]:
    """``fetch()`` until ``done`` says so."""
    deadline = time.monotonic() + timeout
    while True:
        body = await fetch()
        if done(body):
            return body
        assert time.monotonic() < deadline, f"still not done: {body}"
        await asyncio.sleep(0.05)


def poll_sync(
    fetch: Callable[[], dict[str, Any]], done: Callable[[dict[str, Any]], bool], timeout: float = 15
) -> dict[str, Any]:
    """The plain-client version of :func:`poll`."""
    deadline = time.monotonic() + timeout
    while True:
        body = fetch()
        if done(body):
            return body
        assert time.monotonic() < deadline, f"still not done: {body}"
        time.sleep(0.05)
