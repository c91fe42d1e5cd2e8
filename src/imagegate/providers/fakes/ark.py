"""Fake OpenAI-like image hosts with their own dialects: Volcengine Ark (Seedream) and xAI.

:class:`FakeArk`: ``POST /api/v3/images/generations`` (``Authorization: Bearer``) → ``{"model",
"created", "data": [{"b64_json"|"url", "size"}], "usage": {"generated_images",
"output_tokens", "total_tokens"}}``; ``size`` ``"WxH"`` or ``"1K"``/``"2K"``/``"4K"``; group
mode (``sequential_image_generation: "auto"``) answers ``max_images`` images. Errors:
``{"error": {"code", "message", "param", "type"}}``; :class:`~.script.Blocked` is a 400
``OutputImageSensitiveContentDetected`` (or the code given as its reason).

:class:`FakeXAI`: ``POST /v1/images/generations`` (``Authorization: Bearer``) → OpenAI's
``{"data": [{"b64_json"|"url", "revised_prompt"}]}`` as JPEG; it refuses ``size``, ``quality``
and ``style`` with a 400 (``Argument not supported``); Grok Imagine models take
``aspect_ratio`` and ``resolution``; ``GET /v1/models/{id}``. Errors: ``{"code", "error"}``.
"""

from __future__ import annotations

import io
import time
from typing import Any

import pybase64
from PIL import Image
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from imagegate.providers.fakes.images import image_bytes
from imagegate.providers.fakes.script import FakeUpstream, Step, json_response
from imagegate.providers.fakes.tasks import _ratio_size

__all__ = ["FakeArk", "FakeXAI"]

_ARK_CODES = {400: ("InvalidParameter", "BadRequest"), 401: ("AuthenticationError", "Unauthorized"),
              404: ("InvalidEndpointOrModel.NotFound", "NotFound"),
              429: ("RateLimitExceeded.EndpointRPMExceeded", "TooManyRequests"),
              500: ("InternalServiceError", "InternalServerError")}  # fmt: skip
_PRESETS = {"1K": (1024, 1024), "2K": (2048, 2048), "4K": (4096, 4096)}


def _b64_or_url(fake: FakeUpstream, request: Request, data: bytes, b64: bool) -> dict[str, str]:
    if b64:
        return {"b64_json": pybase64.b64encode(data).decode()}
    return {"url": fake.publish(request, data, "image/jpeg")}


def _size(body: dict[str, Any]) -> tuple[int, int]:
    """``"WxH"``, a preset, or ``"adaptive"`` (SeedEdit: the input image's shape)."""
    size = str(body.get("size", "2048x2048"))
    if size in _PRESETS:
        return _PRESETS[size]
    if size == "adaptive":
        reference = body.get("image")
        first = reference[0] if isinstance(reference, list) else reference
        if isinstance(first, str) and "," in first:
            with Image.open(io.BytesIO(pybase64.b64decode(first.split(",", 1)[1]))) as image:
                return image.size
        return 1024, 1024
    across, down = size.split("x")
    return int(across), int(down)


class FakeArk(FakeUpstream):
    """Volcengine Ark's image generation (see the module docstring)."""

    def __init__(self, api_key: str = "fake-ark-key") -> None:
        self.api_key = api_key
        super().__init__()

    def routes(self) -> list[BaseRoute]:
        return [Route("/api/v3/images/generations", self._generate, methods=["POST"])]

    def error(
        self, status: int, message: str, code: str | None, retry_after: float | None
    ) -> Response:
        default_code, kind = _ARK_CODES.get(status, ("InternalServiceError", "Error"))
        body = {"error": {"code": code or default_code, "message": message, "param": "",
                          "type": kind}}  # fmt: skip
        return json_response(body, status)

    def blocked(self, route: str, request: Request, reason: str) -> Response:
        code = reason or "OutputImageSensitiveContentDetected"
        return self.error(400, "The request failed because the output image may contain "
                          "sensitive information.", code, None)  # fmt: skip

    def empty(self, route: str, request: Request) -> Response:
        return json_response({"model": "seedream", "created": int(time.time()), "data": []})

    async def _generate(self, request: Request) -> Response:
        call = await self.record("generate", request)
        if request.headers.get("authorization") != f"Bearer {self.api_key}":
            return self.error(401, "The API key in the request is missing or invalid.", None, None)
        body: dict[str, Any] = call.json or {}
        if not body.get("prompt"):
            message = "The parameter `prompt` specified in the request is not valid: empty."
            return self.error(400, message, "InvalidParameter", None)

        async def success(step: Step) -> Response:
            width, height = _size(body)
            count = 1
            if body.get("sequential_image_generation") == "auto":
                count = int(
                    body.get("sequential_image_generation_options", {}).get("max_images", 15)
                )
            b64 = body.get("response_format") == "b64_json"
            data = [
                {**_b64_or_url(self, request, image_bytes(width, height, "jpeg", i), b64),
                 "size": f"{width}x{height}"}
                for i in range(count)
            ]  # fmt: skip
            usage = {"generated_images": count, "output_tokens": 16384 * count,
                     "total_tokens": 16384 * count}  # fmt: skip
            return json_response(
                {"model": body.get("model"), "created": int(time.time()), "data": data,
                 "usage": usage}
            )  # fmt: skip

        return await self.play("generate", request, success)


class FakeXAI(FakeUpstream):
    """xAI's image generation (see the module docstring)."""

    def __init__(self, api_key: str = "xai-fake") -> None:
        self.api_key = api_key
        super().__init__()

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/v1/images/generations", self._generate, methods=["POST"]),
            Route("/v1/models/{model}", self._model),
        ]

    def error(
        self, status: int, message: str, code: str | None, retry_after: float | None
    ) -> Response:
        headers = {"retry-after": f"{round(retry_after)}"} if retry_after is not None else None
        return json_response({"code": code or "Client specified an invalid argument",
                              "error": message}, status, headers)  # fmt: skip

    def blocked(self, route: str, request: Request, reason: str) -> Response:
        return self.error(400, reason or "Generated image rejected by content moderation.",
                          None, None)  # fmt: skip

    def empty(self, route: str, request: Request) -> Response:
        return json_response({"data": []})

    def _denied(self, request: Request) -> Response | None:
        given = request.headers.get("authorization")
        if given == f"Bearer {self.api_key}":
            return None
        if not given:
            return self.error(401, "No API key provided.", "Unauthenticated", None)
        return self.error(400, "Incorrect API key provided: ***. You can obtain an API key "
                          "from https://console.x.ai.", "Client specified an invalid argument",
                          None)  # fmt: skip

    async def _generate(self, request: Request) -> Response:
        call = await self.record("generate", request)
        denied = self._denied(request)
        if denied is not None:
            return denied
        body: dict[str, Any] = call.json or {}
        for name in ("size", "quality", "style"):
            if name in body:
                return self.error(400, f"Argument not supported: {name}", None, None)

        async def success(step: Step) -> Response:
            width, height = 1024, 768
            if "aspect_ratio" in body:
                width, height = _ratio_size(body["aspect_ratio"])
                if body.get("resolution") == "2k":
                    width, height = width * 2, height * 2
            b64 = body.get("response_format") == "b64_json"
            data = [
                {**_b64_or_url(self, request, image_bytes(width, height, "jpeg", i), b64),
                 "revised_prompt": f"A detailed image of {body.get('prompt')}"}
                for i in range(int(body.get("n", 1)))
            ]  # fmt: skip
            return json_response({"data": data})

        return await self.play("generate", request, success)

    async def _model(self, request: Request) -> Response:
        await self.record("model", request)
        denied = self._denied(request)
        model = request.path_params["model"]
        return denied or json_response(
            {"id": model, "created": 1737331200, "object": "model", "owned_by": "xai"}
        )
