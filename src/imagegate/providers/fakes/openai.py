"""A fake OpenAI Images upstream, also answering Azure's deployment paths.

Routes (the real ones): ``POST /v1/images/generations``, ``/v1/images/edits`` (multipart,
``image`` or ``image[]``, ``mask``), ``/v1/images/variations``, SSE when ``stream`` is true,
``GET /v1/models/{id}``; and ``POST /openai/deployments/{d}/images/{generations|edits}`` plus
``GET /openai/models`` with ``api-version`` and an ``api-key`` header. Answers use the real
shapes: ``b64_json`` for gpt-image models (with ``usage`` and the details fields), ``url`` or
``b64_json`` by ``response_format`` for dall-e models, OpenAI's error envelope, ``retry-after``
and ``retry-after-ms`` on 429.

``fixed_body`` (bench) answers every generation with the same precomputed bytes; ``delay``
holds every generation that long.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import orjson
import pybase64
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from imagegate.providers.fakes.images import MIME, image_bytes
from imagegate.providers.fakes.script import (
    Expired,
    FakeUpstream,
    Step,
    json_response,
)

__all__ = ["FakeOpenAI"]

_TOKENS = {"low": 272, "medium": 1056, "high": 4160, "auto": 1056}


class FakeOpenAI(FakeUpstream):
    """See the module docstring; ``api_key`` is the only key accepted."""

    def __init__(
        self, api_key: str = "sk-fake-openai", *, fixed_body: bytes | None = None, delay: float = 0
    ) -> None:
        self.api_key = api_key
        self.fixed_body = fixed_body
        self.delay = delay
        super().__init__()

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/v1/images/generations", self._generate, methods=["POST"]),
            Route("/v1/images/edits", self._edit, methods=["POST"]),
            Route("/v1/images/variations", self._variation, methods=["POST"]),
            Route("/v1/models/{model}", self._model),
            Route(
                "/openai/deployments/{deployment}/images/generations",
                self._generate,
                methods=["POST"],
            ),
            Route("/openai/deployments/{deployment}/images/edits", self._edit, methods=["POST"]),
            Route("/openai/models", self._model),
        ]

    def error(
        self, status: int, message: str, code: str | None, retry_after: float | None
    ) -> Response:
        headers = {}
        if retry_after is not None:
            headers = {
                "retry-after": f"{max(0, round(retry_after))}",
                "retry-after-ms": f"{retry_after * 1000:.0f}",
            }
        kind = (
            "rate_limit_error"
            if status == 429
            else "invalid_request_error"
            if status < 500
            else "server_error"
        )
        body = {"error": {"message": message, "type": kind, "param": None, "code": code}}
        return json_response(body, status, headers)

    def blocked(self, route: str, request: Request, reason: str) -> Response:
        message = "Your request was rejected as a result of our safety system."
        code = reason or "moderation_blocked"
        body = {
            "error": {
                "message": message,
                "type": "image_generation_user_error",
                "param": None,
                "code": code,
            }
        }
        return json_response(body, 400)

    def empty(self, route: str, request: Request) -> Response:
        return json_response({"created": int(time.time()), "data": []})

    def _authorised(self, request: Request) -> Response | None:
        azure = request.url.path.startswith("/openai/")
        if azure:
            if "api-version" not in request.query_params:
                return self.error(404, "Resource not found", "404", None)
            given = request.headers.get("api-key")
        else:
            given = request.headers.get("authorization", "").removeprefix("Bearer ")
        if given != self.api_key:
            shown = (given or "")[:4] + "***"
            return self.error(401, f"Incorrect API key provided: {shown}.", "invalid_api_key", None)
        return None

    async def _generate(self, request: Request) -> Response:
        if self.fixed_body is not None:
            await request.body()
            if self.delay:
                await asyncio.sleep(self.delay)
            return Response(self.fixed_body, media_type="application/json")
        denied = self._authorised(request)
        call = await self.record("generate", request)
        if denied is not None:
            return denied
        if self.delay:
            await asyncio.sleep(self.delay)
        body: dict[str, Any] = call.json or {}
        return await self._answer("generate", request, body, "image_generation")

    async def _edit(self, request: Request) -> Response:
        denied = self._authorised(request)
        call = await self.record("edit", request)
        if denied is not None:
            return denied
        if not (call.files.get("image") or call.files.get("image[]")):
            return self.error(400, "image is required", "missing_required_parameter", None)
        return await self._answer("edit", request, dict(call.form), "image_edit")

    async def _variation(self, request: Request) -> Response:
        denied = self._authorised(request)
        call = await self.record("variation", request)
        if denied is not None:
            return denied
        return await self._answer("variation", request, dict(call.form), "image_variation")

    async def _model(self, request: Request) -> Response:
        denied = self._authorised(request)
        await self.record("model", request)
        if denied is not None:
            return denied
        model = request.path_params.get("model", "gpt-image-1")
        return json_response(
            {"id": model, "object": "model", "created": 1745280000, "owned_by": "system"}
        )

    async def _answer(
        self, route: str, request: Request, body: dict[str, Any], prefix: str
    ) -> Response:
        async def success(step: Step) -> Response:
            if _truthy(body.get("stream")):
                return StreamingResponse(self._events(body, prefix), media_type="text/event-stream")
            return json_response(self._images(request, body, expired=isinstance(step, Expired)))

        return await self.play(route, request, success)

    def _images(self, request: Request, body: dict[str, Any], *, expired: bool) -> dict[str, Any]:
        model = str(body.get("model") or "dall-e-2")
        gpt_image = not model.startswith("dall-e")
        n = int(body.get("n") or 1)
        width, height = _size(body.get("size"))
        fmt = str(body.get("output_format") or "png") if gpt_image else "png"
        as_url = not gpt_image and body.get("response_format", "url") == "url"
        data = []
        for index in range(n):
            image = image_bytes(width, height, fmt, index)
            if as_url:
                item = {"url": self.publish(request, image, MIME[fmt], expired=expired)}
            else:
                item = {"b64_json": pybase64.b64encode(image).decode()}
            if model.startswith("dall-e-3"):
                item["revised_prompt"] = f"A picture of {body.get('prompt', '')}"
            data.append(item)
        answer: dict[str, Any] = {"created": int(time.time()), "data": data}
        if gpt_image:
            quality = str(body.get("quality") or "auto")
            answer.update(
                background=body.get("background")
                if body.get("background") in ("transparent", "opaque")
                else "opaque",
                output_format=fmt,
                quality="medium" if quality == "auto" else quality,
                size=f"{width}x{height}",
                usage=_usage(body, n),
            )
        return answer

    async def _events(self, body: dict[str, Any], prefix: str) -> Any:
        width, height = _size(body.get("size"))
        fmt = str(body.get("output_format") or "png")
        common = {
            "size": f"{width}x{height}",
            "quality": "medium",
            "background": "opaque",
            "output_format": fmt,
        }
        for index in range(int(body.get("partial_images") or 0)):
            image = pybase64.b64encode(
                image_bytes(width // 4 or 1, height // 4 or 1, fmt, index)
            ).decode()
            payload = {
                "type": f"{prefix}.partial_image",
                "b64_json": image,
                "partial_image_index": index,
                "created_at": int(time.time()),
                **common,
            }
            yield f"event: {prefix}.partial_image\ndata: {orjson.dumps(payload).decode()}\n\n"
            await asyncio.sleep(0)
        final = pybase64.b64encode(image_bytes(width, height, fmt)).decode()
        payload = {
            "type": f"{prefix}.completed",
            "b64_json": final,
            "created_at": int(time.time()),
            "usage": _usage(body, 1),
            **common,
        }
        yield f"event: {prefix}.completed\ndata: {orjson.dumps(payload).decode()}\n\n"


def _truthy(value: object) -> bool:
    return value is True or value == "true"


def _size(size: object) -> tuple[int, int]:
    if not isinstance(size, str) or "x" not in size:
        return 1024, 1024
    width, _, height = size.partition("x")
    return min(int(width), 4096), min(int(height), 4096)


def _usage(body: dict[str, Any], n: int) -> dict[str, Any]:
    text = len(str(body.get("prompt", "")).split()) + 5
    image_out = _TOKENS.get(str(body.get("quality") or "auto"), 1056) * n
    return {
        "input_tokens": text,
        "input_tokens_details": {"image_tokens": 0, "text_tokens": text},
        "output_tokens": image_out,
        "output_tokens_details": {"image_tokens": image_out, "text_tokens": 0},
        "total_tokens": text + image_out,
    }
