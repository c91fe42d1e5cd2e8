"""``google-genai``, as a Gemini user calls it, pointed at a gateway."""

from __future__ import annotations

import io

from google import genai
from google.genai import types
from PIL import Image


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
