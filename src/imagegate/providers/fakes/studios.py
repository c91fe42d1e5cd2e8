"""Fake hosted image APIs: DashScope (Model Studio), Ideogram, Recraft and Kling, each in its
real wire format (paths, auth header, field names, statuses, error envelopes).

* :class:`FakeDashScope`: ``POST /api/v1/services/aigc/text2image/image-synthesis`` wants
  ``Authorization: Bearer`` and ``X-DashScope-Async: enable`` (else 403 ``AccessDenied``) →
  ``{"output": {"task_id", "task_status": "PENDING"}, "request_id"}``; ``GET
  /api/v1/tasks/{id}`` → ``PENDING``/``RUNNING`` (``pending_polls`` times), then
  ``SUCCEEDED`` with ``results[].url`` (``parameters.size`` ``W*H``, ``n`` images) or
  ``FAILED`` with ``code: DataInspectionFailed`` (scripted :class:`Blocked`); ``POST
  /api/v1/services/aigc/multimodal-generation/generation`` (qwen-image-edit) answers at once
  with ``output.choices[0].message.content[{"image"}]``; ``GET /api/v1/tasks``. Errors:
  ``{"request_id", "code", "message"}``.
* :class:`FakeIdeogram`: ``POST /v1/ideogram-v3/{generate,edit,remix}`` (multipart,
  ``Api-Key``) → ``{"created", "data": [{"url", "resolution", "is_image_safe", "seed",
  "prompt"}]}`` with ``num_images`` images in the ``aspect_ratio`` (or the input's size);
  ``POST /describe`` → ``{"descriptions": [{"text"}]}``. A scripted :class:`Blocked` is 422
  "Prompt or provided image failed the safety checks"; errors ``{"error": message}``.
* :class:`FakeRecraft`: ``POST /v1/images/generations`` (Bearer) → ``{"created", "data":
  [{"url", "image_id"}]}`` (an SVG for ``vector_illustration``/``icon`` styles); ``POST
  /v1/images/vectorize`` and ``/v1/images/removeBackground`` (multipart ``file``) →
  ``{"image": {"url"}}`` (raster results are WebP, as Recraft's default); ``GET
  /v1/users/me``. Recraft documents only two error bodies, both ``text/plain``: 401 ``request
  unauthorized`` and 404 ``404 page not found``; other failures are modelled as JSON
  ``{"code", "message"}`` (the API says their body is plain text or JSON), a safety refusal as
  400 ``inappropriate_content``.
* :class:`FakeKling`: ``POST /v1/images/generations`` and ``GET
  /v1/images/generations/{id}`` with a Bearer JWT (HS256, ``iss`` = the access key, checked
  with the secret key, ``exp``/``nbf`` enforced: else 401 code 1000/1004) → ``{"code": 0,
  "message": "SUCCEED", "request_id", "data": {"task_id", "task_status", "task_result":
  {"images": [{"index", "url"}]}}}``; statuses ``submitted`` → ``processing`` → ``succeed``
  /``failed``. Errors: HTTP status and Kling's ``code`` (1200 invalid, 1301 content
  security, 1302 rate limit, 5000 server).
"""

from __future__ import annotations

import hashlib
import hmac
import io
import time
from typing import Any

import orjson
import pybase64
from PIL import Image
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from imagegate.providers.fakes.images import MIME, image_bytes
from imagegate.providers.fakes.script import Blocked, FakeUpstream, NoImage, Step, json_response
from imagegate.providers.fakes.tasks import _Job, _ratio_size, _TaskFake

__all__ = ["FakeDashScope", "FakeIdeogram", "FakeKling", "FakeRecraft"]


def _retry(retry_after: float | None) -> dict[str, str] | None:
    return {"retry-after": f"{retry_after:g}"} if retry_after is not None else None


# Ideogram 3.0's output resolution for each aspect ratio (its documented resolution list).
IDEOGRAM_RESOLUTIONS = {
    "1x1": (1024, 1024), "16x9": (1312, 736), "9x16": (736, 1312), "3x2": (1248, 832),
    "2x3": (832, 1248), "4x3": (1152, 864), "3x4": (864, 1152), "16x10": (1280, 800),
    "10x16": (800, 1280), "3x1": (1536, 512), "1x3": (512, 1536), "2x1": (1408, 704),
    "1x2": (704, 1408), "5x4": (1120, 896), "4x5": (896, 1120),
}  # fmt: skip


def svg_bytes(width: int, height: int) -> bytes:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}"><rect width="100%" height="100%" fill="#4682b4"/>'
        '<circle cx="50%" cy="50%" r="25%" fill="#fafaf0"/></svg>'
    ).encode()


class FakeDashScope(_TaskFake):
    """DashScope (see the module docstring)."""

    def __init__(self, api_key: str = "sk-fake-dashscope", pending_polls: int = 1) -> None:
        super().__init__(api_key, pending_polls)

    def routes(self) -> list[BaseRoute]:
        return [
            Route(
                "/api/v1/services/aigc/text2image/image-synthesis", self._create, methods=["POST"]
            ),
            Route(
                "/api/v1/services/aigc/multimodal-generation/generation",
                self._edit,
                methods=["POST"],
            ),
            Route("/api/v1/tasks/{id}", self._task),
            Route("/api/v1/tasks", self._tasks),
        ]

    def error(
        self, status: int, message: str, code: str | None, retry_after: float | None
    ) -> Response:
        default = {400: "InvalidParameter", 401: "InvalidApiKey", 429: "Throttling.RateQuota"}
        body = {
            "request_id": "7574ee8f-38a3-4b1e-9280-11c33ab46e51",
            "code": code or default.get(status, "InternalError"),
            "message": message,
        }
        return json_response(body, status, _retry(retry_after))

    def blocked(self, route: str, request: Request, reason: str) -> Response:
        message = "Input data may contain inappropriate content."
        return self.error(400, message, "DataInspectionFailed", None)

    def _denied(self, request: Request) -> Response | None:
        if request.headers.get("authorization") == f"Bearer {self.api_key}":
            return None
        return self.error(401, "Invalid API-key provided.", "InvalidApiKey", None)

    async def _create(self, request: Request) -> Response:
        async def build(request: Request, body: dict[str, Any], step: Step) -> Response:
            if request.headers.get("x-dashscope-async") != "enable":
                return self.error(
                    403, "current user api does not support synchronous calls", "AccessDenied", None
                )
            size = str(body.get("parameters", {}).get("size", "1024*1024"))
            width, _, height = size.partition("*")
            job_id = self._start(body, step, int(width), int(height), "png")
            self.jobs[job_id].extra["n"] = int(body.get("parameters", {}).get("n", 1))
            return json_response(
                {
                    "output": {"task_status": "PENDING", "task_id": job_id},
                    "request_id": "4909100c-7b5a-9f92-bfe5-xxxxxx",
                }
            )

        return await self._submit(request, self._denied(request), build)

    async def _task(self, request: Request) -> Response:
        async def render(
            request: Request, job_id: str, job: _Job | None, *, finished: bool
        ) -> Response:
            if job is None:
                return json_response(
                    {"request_id": "r", "output": {"task_id": job_id, "task_status": "UNKNOWN"}}
                )
            output: dict[str, Any] = {
                "task_id": job_id,
                "submit_time": "2025-09-01 12:00:00.000",
            }
            if not finished:
                status = "PENDING" if job.polls_left > 0 else "RUNNING"
                output["task_status"] = status
            elif isinstance(job.outcome, Blocked):
                output.update(
                    task_status="FAILED",
                    code="DataInspectionFailed",
                    message="Output data may contain inappropriate content.",
                )
            elif isinstance(job.outcome, NoImage):
                output.update(task_status="SUCCEEDED", results=[])
            else:
                results = [
                    {
                        "url": self._sample(request, job, i),
                        "orig_prompt": job.body["input"]["prompt"],
                    }
                    for i in range(job.extra.get("n", 1))
                ]
                output.update(
                    task_status="SUCCEEDED",
                    results=results,
                    task_metrics={"TOTAL": len(results), "SUCCEEDED": len(results), "FAILED": 0},
                )
            usage = {"image_count": len(output.get("results", []))}
            return json_response({"request_id": "r", "output": output, "usage": usage})

        return await self._poll(request, request.path_params["id"], self._denied(request), render)

    async def _edit(self, request: Request) -> Response:
        call = await self.record("edit", request)
        denied = self._denied(request)
        if denied is not None:
            return denied

        async def success(step: Step) -> Response:
            content = (call.json or {}).get("input", {}).get("messages", [{}])[0].get("content", [])
            image = next((part["image"] for part in content if "image" in part), "")
            data = pybase64.b64decode(image.partition(",")[2]) if image.startswith("data:") else b""
            with Image.open(io.BytesIO(data)) as opened:
                width, height = opened.size
            url = self.publish(request, image_bytes(width, height, "png"), "image/png")
            return json_response(
                {
                    "output": {
                        "choices": [
                            {
                                "finish_reason": "stop",
                                "message": {"role": "assistant", "content": [{"image": url}]},
                            }
                        ]
                    },
                    "usage": {"width": width, "height": height, "image_count": 1},
                    "request_id": "d2d8b0d8-6d2f-9a1c-9f4c-xxxxxx",
                }
            )

        return await self.play("edit", request, success)

    async def _tasks(self, request: Request) -> Response:
        await self.record("tasks", request)
        return self._denied(request) or json_response(
            {"request_id": "r", "data": [], "total": 0, "page_no": 1, "page_size": 1}
        )


class _SyncFake(FakeUpstream):
    """A fake that answers at once and serves its result files from its own origin."""

    def __init__(self, api_key: str) -> None:
        self.api_key = api_key
        super().__init__()

    def _url(self, request: Request, data: bytes, media_type: str) -> str:
        return self.publish(request, data, media_type)


class FakeIdeogram(_SyncFake):
    """Ideogram 3.0 (see the module docstring)."""

    def __init__(self, api_key: str = "fake-ideogram-key") -> None:
        super().__init__(api_key)

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/v1/ideogram-v3/{action}", self._draw, methods=["POST"]),
            Route("/describe", self._describe, methods=["POST"]),
        ]

    def error(
        self, status: int, message: str, code: str | None, retry_after: float | None
    ) -> Response:
        return json_response({"error": message}, status, _retry(retry_after))

    def blocked(self, route: str, request: Request, reason: str) -> Response:
        return self.error(422, "Prompt or provided image failed the safety checks", None, None)

    def empty(self, route: str, request: Request) -> Response:
        return json_response({"created": "2025-01-01T00:00:00Z", "data": []})

    def _denied(self, request: Request) -> Response | None:
        if request.headers.get("api-key") == self.api_key:
            return None
        return self.error(401, "Unauthorized", None, None)

    async def _draw(self, request: Request) -> Response:
        action = request.path_params["action"]
        call = await self.record(action, request)
        denied = self._denied(request)
        if denied is not None:
            return denied
        if action not in ("generate", "edit", "remix"):
            return self.error(404, "Not Found", None, None)
        if "prompt" not in call.form or (action != "generate" and "image" not in call.files):
            return self.error(400, "Invalid input: prompt and image are required", None, None)
        if action == "edit" and "mask" not in call.files:
            return self.error(400, "Invalid input: mask is required", None, None)

        async def success(step: Step) -> Response:
            width, height = IDEOGRAM_RESOLUTIONS.get(
                call.form.get("aspect_ratio", ""), (1024, 1024)
            )
            count = int(call.form.get("num_images", "1"))
            data = [
                {
                    "url": self._url(request, image_bytes(width, height, "png", i), "image/png"),
                    "resolution": f"{width}x{height}",
                    "is_image_safe": True,
                    "seed": 12345 + i,
                    "prompt": call.form.get("prompt"),
                    "style_type": "GENERAL",
                }
                for i in range(count)
            ]
            return json_response({"created": "2025-01-01T00:00:00Z", "data": data})

        return await self.play(action, request, success)

    async def _describe(self, request: Request) -> Response:
        call = await self.record("describe", request)
        denied = self._denied(request)
        if denied is not None:
            return denied
        if "image_file" not in call.files:
            return self.error(400, "Invalid input: image_file is required", None, None)

        async def success(step: Step) -> Response:
            return json_response(
                {"descriptions": [{"text": "A flat blue field crossed by a pale band."}]}
            )

        return await self.play("describe", request, success)


class FakeRecraft(_SyncFake):
    """Recraft (see the module docstring)."""

    def __init__(self, api_key: str = "fake-recraft-key") -> None:
        super().__init__(api_key)

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/v1/images/generations", self._generate, methods=["POST"]),
            Route("/v1/images/vectorize", self._vectorize, methods=["POST"]),
            Route("/v1/images/removeBackground", self._remove, methods=["POST"]),
            Route("/v1/users/me", self._me),
        ]

    def error(
        self, status: int, message: str, code: str | None, retry_after: float | None
    ) -> Response:
        return json_response(
            {"code": code or "invalid_request", "message": message}, status, _retry(retry_after)
        )

    def blocked(self, route: str, request: Request, reason: str) -> Response:
        return self.error(400, "The prompt was flagged", "inappropriate_content", None)

    def empty(self, route: str, request: Request) -> Response:
        return json_response({"created": 1735689600, "data": []})

    def _denied(self, request: Request) -> Response | None:
        if request.headers.get("authorization") == f"Bearer {self.api_key}":
            return None
        return Response("request unauthorized", 401, media_type="text/plain")

    async def _generate(self, request: Request) -> Response:
        call = await self.record("generate", request)
        denied = self._denied(request)
        if denied is not None:
            return denied

        async def success(step: Step) -> Response:
            body = call.json or {}
            width, _, height = str(body.get("size", "1024x1024")).partition("x")
            w, h = int(width), int(height)
            vector = body.get("style") in ("vector_illustration", "icon")
            data = []
            for i in range(int(body.get("n", 1))):
                payload, kind = (
                    (svg_bytes(w, h), "image/svg+xml")
                    if vector
                    else (image_bytes(w, h, "webp", i), MIME["webp"])
                )
                data.append({"url": self._url(request, payload, kind), "image_id": f"img-{i}"})
            return json_response({"created": 1735689600, "credits": 40, "data": data})

        return await self.play("generate", request, success)

    async def _single(self, route: str, request: Request, vector: bool) -> Response:
        call = await self.record(route, request)
        denied = self._denied(request)
        if denied is not None:
            return denied
        if "file" not in call.files:
            return self.error(400, "file is required", "invalid_request", None)

        async def success(step: Step) -> Response:
            payload, kind = (
                (svg_bytes(64, 64), "image/svg+xml")
                if vector
                else (_transparent_png(64, 64), "image/png")
            )
            return json_response({"image": {"url": self._url(request, payload, kind)}})

        return await self.play(route, request, success)

    async def _vectorize(self, request: Request) -> Response:
        return await self._single("vectorize", request, vector=True)

    async def _remove(self, request: Request) -> Response:
        return await self._single("remove_background", request, vector=False)

    async def _me(self, request: Request) -> Response:
        await self.record("me", request)
        return self._denied(request) or json_response(
            {"id": "u-1", "name": "Fake", "email": "fake@example.com", "credits": 1000}
        )


def _transparent_png(width: int, height: int) -> bytes:
    image = Image.new("RGBA", (width, height), (0, 0, 0, 0))
    image.paste((200, 80, 60, 255), (width // 4, height // 4, 3 * width // 4, 3 * height // 4))
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def _b64url_decode(part: str) -> bytes:
    return pybase64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


class FakeKling(_TaskFake):
    """Kling (see the module docstring)."""

    def __init__(
        self,
        access_key: str = "fake-kling-ak",
        secret_key: str = "fake-kling-sk",  # noqa: S107 - a fake's own test key
        pending_polls: int = 1,
    ) -> None:
        self.secret_key = secret_key
        super().__init__(access_key, pending_polls)

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/v1/images/generations", self._generations, methods=["GET", "POST"]),
            Route("/v1/images/generations/{id}", self._get),
        ]

    def error(
        self, status: int, message: str, code: str | None, retry_after: float | None
    ) -> Response:
        codes = {400: 1200, 401: 1000, 403: 1103, 404: 1203, 429: 1302}
        number = int(code) if code and code.isdigit() else codes.get(status, 5000)
        body = {"code": number, "message": message, "request_id": "CjhWGmdz6m4AAAAAAKYvSg"}
        return json_response(body, status, _retry(retry_after))

    def _denied(self, request: Request) -> Response | None:
        """Kling's own check of the JWT: signature with the secret key, iss, nbf and exp."""
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        parts = token.split(".")
        if scheme != "Bearer" or len(parts) != 3:
            return self.error(401, "Authorization is invalid", "1002", None)
        header, claims, signature = parts
        expected = hmac.new(
            self.secret_key.encode(), f"{header}.{claims}".encode(), hashlib.sha256
        ).digest()
        try:
            valid = hmac.compare_digest(_b64url_decode(signature), expected)
            head, body = orjson.loads(_b64url_decode(header)), orjson.loads(_b64url_decode(claims))
        except (ValueError, orjson.JSONDecodeError):
            return self.error(401, "Authorization is invalid", "1002", None)
        if not valid or head.get("alg") != "HS256" or body.get("iss") != self.api_key:
            return self.error(401, "Auth failed", "1000", None)
        now = time.time()
        if body.get("nbf", 0) > now:
            return self.error(401, "Token not yet valid", "1003", None)
        if body.get("exp", 0) < now:
            return self.error(401, "Token expired", "1004", None)
        return None

    async def _generations(self, request: Request) -> Response:
        if request.method == "GET":
            await self.record("list", request)
            return self._denied(request) or json_response(
                {"code": 0, "message": "SUCCEED", "request_id": "r", "data": []}
            )

        async def build(request: Request, body: dict[str, Any], step: Step) -> Response:
            if isinstance(step, Blocked):
                return self.error(400, "Failure to pass the risk control system", "1301", None)
            width, height = _ratio_size(body.get("aspect_ratio", "16:9"))
            job_id = self._start(body, step, width, height, "png")
            self.jobs[job_id].extra["n"] = int(body.get("n", 1))
            return json_response(self._envelope(job_id, "submitted"))

        return await self._submit(request, self._denied(request), build)

    def _envelope(
        self, job_id: str, status: str, result: dict[str, Any] | None = None, msg: str = ""
    ) -> dict[str, Any]:
        data: dict[str, Any] = {
            "task_id": job_id,
            "task_status": status,
            "task_status_msg": msg,
            "created_at": 1722769557708,
            "updated_at": 1722769557708,
        }
        if result is not None:
            data["task_result"] = result
        return {
            "code": 0,
            "message": "SUCCEED",
            "request_id": "CjhWGmdz6m4AAAAAAKYvSg",
            "data": data,
        }

    async def _get(self, request: Request) -> Response:
        async def render(
            request: Request, job_id: str, job: _Job | None, *, finished: bool
        ) -> Response:
            if job is None:
                return self.error(404, "task not found", "1203", None)
            if not finished:
                status = "submitted" if job.polls_left > 0 else "processing"
                return json_response(self._envelope(job_id, status))
            if isinstance(job.outcome, NoImage):
                return json_response(self._envelope(job_id, "succeed", {"images": []}))
            images = [
                {"index": i, "url": self._sample(request, job, i)}
                for i in range(job.extra.get("n", 1))
            ]
            return json_response(self._envelope(job_id, "succeed", {"images": images}))

        return await self._poll(request, request.path_params["id"], self._denied(request), render)
