"""A fake Bria v2 engine: ``POST /v2/image/generate``, ``/v2/image/edit`` and
``/v2/image/edit/{tool}`` (``api_token`` header) → ``202 {"request_id", "status_url"}``
(``sync: true`` answers the finished status at once); ``GET /v2/status/{id}`` →
``IN_PROGRESS`` (``pending_polls`` times) then ``COMPLETED`` with ``result.image_url`` on this
fake's origin, or ``ERROR`` with ``{"code", "message", "details"}``; an unknown id is a 404.

``POST /v1/text-to-vector/{tier}/{version}`` (the v1 route Bria's vectors still live on)
answers at once ``{"result": [{"urls": [svg], "seed", "uuid"}]}``, ``num_results`` of them.

Output sizes follow the request: ``aspect_ratio`` at about one megapixel, the input image for
edits, ``canvas_size`` for expand, ``scale`` times the input for increase_resolution (PNG for
background removal). :class:`~.script.Blocked` is an ``ERROR`` naming content moderation (422);
a 429 carries ``Retry-After``.
"""

from __future__ import annotations

import io
from typing import Any

import pybase64
from PIL import Image
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from imagegate.providers.fakes.script import Blocked, NoImage, Step, json_response
from imagegate.providers.fakes.tasks import _Job, _ratio_size, _TaskFake

__all__ = ["FakeBria"]

_REASONS = {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
            422: "Unprocessable Entity", 429: "Too Many Requests", 500: "Internal Server Error",
            502: "Bad Gateway", 503: "Service Unavailable"}  # fmt: skip


class FakeBria(_TaskFake):
    """Bria's v2 engine (see the module docstring)."""

    def __init__(self, api_key: str = "fake-bria-token", pending_polls: int = 1) -> None:
        super().__init__(api_key, pending_polls)

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/v2/image/generate", self._create, methods=["POST"]),
            Route("/v2/image/edit", self._create, methods=["POST"]),
            Route("/v2/image/edit/{tool}", self._create, methods=["POST"]),
            Route("/v2/status/{id}", self._status),
            Route("/v1/text-to-vector/{tier}/{version}", self._vector, methods=["POST"]),
        ]

    def error(
        self, status: int, message: str, code: str | None, retry_after: float | None
    ) -> Response:
        headers = {"retry-after": f"{retry_after:g}"} if retry_after is not None else None
        error = {"code": status, "message": _REASONS.get(status, f"HTTP {status}"),
                 "details": message}  # fmt: skip
        return json_response({"error": error}, status, headers)

    def _denied(self, request: Request) -> Response | None:
        if request.headers.get("api_token") == self.api_key:
            return None
        return self.error(401, "Invalid or missing api_token", None, None)

    async def _create(self, request: Request) -> Response:
        async def build(request: Request, body: dict[str, Any], step: Step) -> Response:
            width, height, fmt = _output(request.url.path, body)
            job_id = self._start(body, step, width, height, fmt)
            if body.get("sync"):
                return json_response(self._body(request, job_id, self.jobs[job_id], True))
            base = str(request.base_url).rstrip("/")
            return json_response(
                {"request_id": job_id, "status_url": f"{base}/v2/status/{job_id}"}, 202
            )

        return await self._submit(request, self._denied(request), build)

    async def _vector(self, request: Request) -> Response:
        call = await self.record("vector", request)
        denied = self._denied(request)
        if denied is not None:
            return denied
        body: dict[str, Any] = call.json or {}

        async def success(step: Step) -> Response:
            width, height = _ratio_size(body.get("aspect_ratio", "1:1"))
            results = []
            for index in range(int(body.get("num_results", 1))):
                svg = (
                    f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}">'
                    f'<rect width="{width}" height="{height}" fill="#{index:06x}"/></svg>'
                ).encode()
                url = self.publish(request, svg, "image/svg+xml")
                results.append({"urls": [url], "seed": 1000 + index, "uuid": f"v_{index}"})
            return json_response({"result": results})

        return await self.play("vector", request, success)

    async def _status(self, request: Request) -> Response:
        async def render(
            request: Request, job_id: str, job: _Job | None, *, finished: bool
        ) -> Response:
            if job is None:
                return self.error(404, "Request not found", None, None)
            return json_response(self._body(request, job_id, job, finished))

        return await self._poll(request, request.path_params["id"], self._denied(request), render)

    def _body(self, request: Request, job_id: str, job: _Job, finished: bool) -> dict[str, Any]:
        if not finished:
            return {"request_id": job_id, "status": "IN_PROGRESS"}
        if isinstance(job.outcome, Blocked):
            details = job.outcome.reason or "Request blocked by content moderation"
            error = {"code": 422, "message": "Unprocessable Entity", "details": details}
            return {"request_id": job_id, "status": "ERROR", "error": error}
        if isinstance(job.outcome, NoImage):
            return {"request_id": job_id, "status": "COMPLETED", "result": {}}
        result = {"image_url": self._sample(request, job), "seed": 314159}
        if "prompt" in job.body:
            result["prompt"] = job.body["prompt"]
        return {"request_id": job_id, "status": "COMPLETED", "result": result}


def _output(path: str, body: dict[str, Any]) -> tuple[int, int, str]:
    if path.endswith("/generate"):
        width, height = _ratio_size(body.get("aspect_ratio", "1:1"))
        return width, height, "png"
    tool = path.rsplit("/", 1)[-1]
    image = body.get("image") or (body.get("images") or [""])[0]
    width, height = _size_of(str(image))
    if tool == "expand" and body.get("canvas_size"):
        width, height = (int(side) for side in body["canvas_size"])
    elif tool == "increase_resolution":
        scale = int(body.get("scale", 2))
        width, height = width * scale, height * scale
    return width, height, "png"


def _size_of(encoded: str) -> tuple[int, int]:
    try:
        with Image.open(io.BytesIO(pybase64.b64decode(encoded.split(",")[-1]))) as image:
            return image.size
    except (ValueError, OSError):
        return 1024, 1024
