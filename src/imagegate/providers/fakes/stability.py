"""A fake Stability AI v2beta Stable Image API.

``POST /v2beta/stable-image/generate/{ultra,core,sd3}``, ``/edit/{inpaint,erase,outpaint,
search-and-replace,remove-background}``, ``/upscale/{fast,conservative}`` (multipart,
``Authorization: Bearer``): with ``Accept: image/*`` the image bytes (``finish-reason``,
``seed`` headers), with ``Accept: application/json`` ``{"image", "finish_reason", "seed"}``.
``POST /upscale/creative`` answers ``{"id"}``; ``GET /v2beta/results/{id}`` answers ``202
{"id", "status": "in-progress"}`` (``pending_polls`` times), then the image; an unknown id is
a 404. ``GET /v1/user/balance`` → ``{"credits"}``.

Sizes: ``aspect_ratio`` at about one megapixel for generations, the input for edits, the input
plus ``left``/``right``/``up``/``down`` for outpaint, 4× for fast upscale, 2× for creative.
Errors: ``{"id", "name", "errors": [...]}``; :class:`~.script.Blocked` is a 403
``content_moderation`` (or, with reason ``"CONTENT_FILTERED"``, a 200 with that finish reason).
"""

from __future__ import annotations

import io
import secrets
from typing import Any

import pybase64
from PIL import Image
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from imagegate.providers.fakes.images import MIME, image_bytes
from imagegate.providers.fakes.script import Blocked, FakeUpstream, Step, json_response
from imagegate.providers.fakes.tasks import _ratio_size

__all__ = ["FakeStability"]

_NAMES = {400: "bad_request", 401: "unauthorized", 402: "payment_required",
          403: "forbidden", 404: "not_found", 413: "payload_too_large",
          422: "invalid_language", 429: "rate_limit_exceeded", 500: "internal_error"}  # fmt: skip


class FakeStability(FakeUpstream):
    """See the module docstring; ``api_key`` is the only key accepted."""

    def __init__(self, api_key: str = "sk-fake-stability", pending_polls: int = 1) -> None:
        self.api_key = api_key
        self.pending_polls = pending_polls
        self.results: dict[str, tuple[int, bytes, str]] = {}
        super().__init__()

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/v2beta/stable-image/{group}/{tool}", self._call, methods=["POST"]),
            Route("/v2beta/results/{id}", self._result),
            Route("/v1/user/balance", self._balance),
        ]

    def error(
        self, status: int, message: str, code: str | None, retry_after: float | None
    ) -> Response:
        body = {"id": secrets.token_hex(16), "name": code or _NAMES.get(status, "error"),
                "errors": [message]}  # fmt: skip
        return json_response(body, status)

    def blocked(self, route: str, request: Request, reason: str) -> Response:
        return self.error(
            403, "Your request was flagged by our content moderation system.",
            "content_moderation", None,
        )  # fmt: skip

    def _denied(self, request: Request) -> Response | None:
        if request.headers.get("authorization") == f"Bearer {self.api_key}":
            return None
        return self.error(401, "authorization: invalid or missing API key", None, None)

    async def _call(self, request: Request) -> Response:
        group, tool = request.path_params["group"], request.path_params["tool"]
        raw = await request.body()

        async def replay() -> dict[str, Any]:
            return {"type": "http.request", "body": raw, "more_body": False}

        async with Request(request.scope, replay).form(max_files=8, max_fields=64) as form:
            fields = {k: v for k, v in form.items() if isinstance(v, str)}
            upload = form.get("image")
            source = await upload.read() if isinstance(upload, UploadFile) else None
        call = await self.record(f"{group}/{tool}", request)
        denied = self._denied(request)
        if denied is not None:
            return denied
        queue = self._scripts.get(call.route)
        head = queue[0] if queue else None
        if isinstance(head, Blocked) and head.reason == "CONTENT_FILTERED":
            assert queue is not None
            queue.popleft()
            return self._image(request, _size(tool, fields, source), fields, "CONTENT_FILTERED")

        async def success(step: Step) -> Response:
            size = _size(tool, fields, source)
            if tool == "creative":
                result_id = secrets.token_hex(32)
                fmt = fields.get("output_format", "png")
                data = image_bytes(*size, fmt if fmt in MIME else "png")
                self.results[result_id] = (self.pending_polls, data, MIME.get(fmt, "image/png"))
                return json_response({"id": result_id})
            return self._image(request, size, fields, "SUCCESS")

        return await self.play(call.route, request, success)

    def _image(
        self, request: Request, size: tuple[int, int], fields: dict[str, Any], reason: str
    ) -> Response:
        fmt = fields.get("output_format", "png")
        fmt = fmt if fmt in MIME else "png"
        data = image_bytes(size[0], size[1], fmt)
        headers = {"finish-reason": reason, "seed": "1234"}
        if request.headers.get("accept", "").startswith("application/json"):
            body = {"image": pybase64.b64encode(data).decode(), "finish_reason": reason,
                    "seed": 1234}  # fmt: skip
            return json_response(body, 200, headers)
        return Response(data, 200, headers, media_type=MIME[fmt])

    async def _result(self, request: Request) -> Response:
        await self.record("result", request)
        denied = self._denied(request)
        if denied is not None:
            return denied
        result_id = request.path_params["id"]

        async def success(step: Step) -> Response:
            found = self.results.get(result_id)
            if found is None:
                return self.error(404, f"generation {result_id} not found", None, None)
            polls_left, data, media_type = found
            if polls_left > 0:
                self.results[result_id] = (polls_left - 1, data, media_type)
                return json_response({"id": result_id, "status": "in-progress"}, 202)
            headers = {"finish-reason": "SUCCESS", "seed": "1"}
            return Response(data, 200, headers, media_type=media_type)

        return await self.play("result", request, success)

    async def _balance(self, request: Request) -> Response:
        await self.record("balance", request)
        return self._denied(request) or json_response({"credits": 42.5})


def _size(tool: str, fields: dict[str, Any], source: bytes | None) -> tuple[int, int]:
    if source is None:
        return _ratio_size(fields.get("aspect_ratio", "1:1"))
    with Image.open(io.BytesIO(source)) as image:
        width, height = image.size
    if tool == "outpaint":
        width += int(fields.get("left", 0)) + int(fields.get("right", 0))
        height += int(fields.get("up", 0)) + int(fields.get("down", 0))
    elif tool == "fast":
        width, height = width * 4, height * 4
    elif tool in ("creative", "conservative"):
        width, height = width * 2, height * 2
    return width, height
