"""A live gateway for the contract tests, and ``google-genai`` as a Gemini user calls it."""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import httpx
from google import genai
from google.genai import types
from PIL import Image

from imagegate.app import create_app
from imagegate.core.routing import RouterSettings
from imagegate.providers.fakes import serve_in_thread
from imagegate.settings import Settings
from tests.conftest import ADMIN_KEY


@dataclass
class Stack:
    gateway: str
    key: str


@contextmanager
def live_gateway(settings: Settings, router: RouterSettings | None = None) -> Iterator[Stack]:
    """A gateway on loopback (its router sped up with ``router``) and a fresh client key."""
    app = create_app(settings)
    gateway = serve_in_thread(app, lifespan="on")
    if router is not None:
        app.state.services.images.router.settings = router
    try:
        created = httpx.post(
            f"{gateway.base_url}/admin/keys",
            json={"name": "contract"},
            headers={"Authorization": f"Bearer {ADMIN_KEY}"},
        )
        created.raise_for_status()
        yield Stack(gateway.base_url, created.json()["key"])
    finally:
        gateway.stop()


def genai_images(gateway: str, key: str, model: str, prompt: str, ratio: str) -> list[Image.Image]:
    """The images ``generate_content`` answers for ``prompt`` at aspect ratio ``ratio``."""
    options = types.HttpOptions(base_url=gateway, api_version="v1beta")
    with genai.Client(api_key=key, http_options=options) as client:
        response = client.models.generate_content(
            model=model,
            contents=prompt,
            config=types.GenerateContentConfig(
                response_modalities=["IMAGE"],
                image_config=types.ImageConfig(aspect_ratio=ratio),
            ),
        )
    assert response.candidates and response.candidates[0].content
    parts = response.candidates[0].content.parts or []
    found = [p.inline_data.data for p in parts if p.inline_data and p.inline_data.data]
    return [Image.open(io.BytesIO(data)) for data in found]
