"""Fake task upstreams: Black Forest Labs, Replicate and fal, each in its real wire format.

* :class:`FakeBFL`: ``POST /v1/{model}`` (``x-key``) → ``{"id", "polling_url"}``;
  ``GET /v1/get_result?id=`` → ``Pending`` (``pending_polls`` times) then ``Ready`` with
  ``result.sample`` on this fake's origin; ``GET /v1/credits``.
* :class:`FakeReplicate`: ``POST /v1/models/{owner}/{name}/predictions`` and
  ``POST /v1/predictions`` (``Authorization: Bearer``); ``Prefer: wait`` answers
  ``succeeded`` at once unless ``pending_polls`` > 0; ``GET /v1/predictions/{id}``,
  ``POST …/cancel``, ``GET /v1/account``.
* :class:`FakeFal`: ``POST /{owner}/{app}[/{path}]`` (``Authorization: Key``) →
  ``{"request_id", "status_url", "response_url", "cancel_url"}``; status ``IN_QUEUE`` →
  ``IN_PROGRESS`` → ``COMPLETED``; the result's ``images`` on this origin; ``PUT …/cancel``.

Scripted steps apply to the submit route (``"submit"``) and to polls (``"poll"``);
:class:`~.script.Blocked` becomes each provider's own safety outcome.
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from imagegate.providers.fakes.images import MIME, image_bytes
from imagegate.providers.fakes.script import (
    Blocked,
    Expired,
    FakeUpstream,
    NoImage,
    Step,
    json_response,
)

__all__ = ["FakeBFL", "FakeFal", "FakeReplicate"]


@dataclass
class _Job:
    body: dict[str, Any]
    polls_left: int
    outcome: Step
    width: int = 1024
    height: int = 1024
    fmt: str = "png"
    extra: dict[str, Any] = field(default_factory=dict)


Build = Callable[[Request, dict[str, Any], Step], Awaitable[Response]]


class Render(Protocol):
    def __call__(
        self, request: Request, job_id: str, job: _Job | None, *, finished: bool
    ) -> Awaitable[Response]: ...


def _ratio_size(ratio: object) -> tuple[int, int]:
    if not isinstance(ratio, str) or ":" not in ratio:
        return 1024, 1024
    across, down = (int(side) for side in ratio.split(":"))
    scale = (1024 * 1024 / (across * down)) ** 0.5
    return int(across * scale) // 16 * 16, int(down * scale) // 16 * 16


class _TaskFake(FakeUpstream):
    def __init__(self, api_key: str, pending_polls: int = 1) -> None:
        self.api_key = api_key
        self.pending_polls = pending_polls
        self.jobs: dict[str, _Job] = {}
        self.cancelled: list[str] = []
        super().__init__()

    def empty(self, route: str, request: Request) -> Response:  # handled per job
        raise NotImplementedError

    def _start(self, body: dict[str, Any], step: Step, width: int, height: int, fmt: str) -> str:
        job_id = secrets.token_hex(8)
        self.jobs[job_id] = _Job(body, self.pending_polls, step, width, height, fmt)
        return job_id

    async def _submit(self, request: Request, denied: Response | None, build: Build) -> Response:
        call = await self.record("submit", request)
        if denied is not None:
            return denied

        async def success(step: Step) -> Response:
            return await build(request, call.json or {}, step)

        # Blocked/NoImage/Expired are outcomes of the job, decided when it finishes.
        queue = self._scripts.get("submit")
        head = queue[0] if queue else None
        if isinstance(head, Blocked | NoImage | Expired):
            assert queue is not None
            step = queue.popleft()
            return await build(request, call.json or {}, step)
        return await self.play("submit", request, success)

    async def _poll(
        self, request: Request, job_id: str, denied: Response | None, render: Render
    ) -> Response:
        await self.record("poll", request)
        if denied is not None:
            return denied
        job = self.jobs.get(job_id)

        async def success(step: Step) -> Response:
            if job is not None and job.polls_left > 0:
                job.polls_left -= 1
                return await render(request, job_id, job, finished=False)
            return await render(request, job_id, job, finished=True)

        return await self.play("poll", request, success)

    def _sample(self, request: Request, job: _Job, index: int = 0) -> str:
        data = image_bytes(job.width, job.height, job.fmt, index)
        return self.publish(request, data, MIME[job.fmt], expired=isinstance(job.outcome, Expired))


class FakeBFL(_TaskFake):
    """Black Forest Labs (see the module docstring)."""

    def __init__(self, api_key: str = "fake-bfl-key", pending_polls: int = 1) -> None:
        super().__init__(api_key, pending_polls)

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/v1/get_result", self._get_result),
            Route("/v1/credits", self._credits),
            Route("/v1/{model}", self._create, methods=["POST"]),
        ]

    def error(
        self, status: int, message: str, code: str | None, retry_after: float | None
    ) -> Response:
        headers = {"retry-after": f"{retry_after:g}"} if retry_after is not None else None
        detail: Any = (
            [{"loc": ["body"], "msg": message, "type": "value_error"}] if status == 422 else message
        )
        return json_response({"detail": detail}, status, headers)

    def _denied(self, request: Request) -> Response | None:
        return (
            None
            if request.headers.get("x-key") == self.api_key
            else self.error(403, "Not authenticated", None, None)
        )

    async def _create(self, request: Request) -> Response:
        async def build(request: Request, body: dict[str, Any], step: Step) -> Response:
            fmt = "jpeg" if body.get("output_format") == "jpeg" else "png"
            width, height = int(body.get("width", 0)), int(body.get("height", 0))
            if not width:
                width, height = _ratio_size(body.get("aspect_ratio"))
            job_id = self._start(body, step, width, height, fmt)
            base = str(request.base_url).rstrip("/")
            return json_response(
                {"id": job_id, "polling_url": f"{base}/v1/get_result?id={job_id}", "cost": 4.0}
            )

        return await self._submit(request, self._denied(request), build)

    async def _get_result(self, request: Request) -> Response:
        return await self._poll(
            request, request.query_params.get("id", ""), self._denied(request), self._render
        )

    async def _render(
        self, request: Request, job_id: str, job: _Job | None, *, finished: bool
    ) -> Response:
        if job is None:
            return json_response(
                {"id": job_id, "status": "Task not found", "result": None, "progress": None}
            )
        if not finished:
            return json_response(
                {"id": job_id, "status": "Pending", "result": None, "progress": 0.4}
            )
        if isinstance(job.outcome, Blocked):
            return json_response(
                {"id": job_id, "status": job.outcome.reason or "Content Moderated", "result": None}
            )
        if isinstance(job.outcome, NoImage):
            return json_response({"id": job_id, "status": "Ready", "result": {"sample": None}})
        result = {
            "sample": self._sample(request, job),
            "prompt": job.body.get("prompt"),
            "seed": 42,
        }
        return json_response({"id": job_id, "status": "Ready", "result": result, "progress": 1.0})

    async def _credits(self, request: Request) -> Response:
        denied = self._denied(request)
        await self.record("credits", request)
        return denied or json_response({"credits": 1234.5})


class FakeReplicate(_TaskFake):
    """Replicate (see the module docstring)."""

    def __init__(self, api_key: str = "r8_fake", pending_polls: int = 0) -> None:
        super().__init__(api_key, pending_polls)

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/v1/models/{owner}/{name}/predictions", self._create, methods=["POST"]),
            Route("/v1/predictions", self._create, methods=["POST"]),
            Route("/v1/predictions/{id}", self._get),
            Route("/v1/predictions/{id}/cancel", self._cancel, methods=["POST"]),
            Route("/v1/account", self._account),
        ]

    def error(
        self, status: int, message: str, code: str | None, retry_after: float | None
    ) -> Response:
        headers = {"retry-after": f"{retry_after:g}"} if retry_after is not None else None
        return json_response(
            {"title": "Error", "detail": message, "status": status}, status, headers
        )

    def _denied(self, request: Request) -> Response | None:
        if request.headers.get("authorization") == f"Bearer {self.api_key}":
            return None
        return self.error(401, "You did not pass a valid authentication token", None, None)

    async def _create(self, request: Request) -> Response:
        async def build(request: Request, body: dict[str, Any], step: Step) -> Response:
            data = body.get("input", {})
            fmt = {"jpg": "jpeg", "webp": "webp"}.get(str(data.get("output_format")), "png")
            width, height = _ratio_size(data.get("aspect_ratio"))
            job_id = self._start(body, step, width, height, fmt)
            job = self.jobs[job_id]
            job.extra["outputs"] = int(data.get("num_outputs", 1))
            waits = "wait" in request.headers.get("prefer", "")
            finished = waits and job.polls_left == 0
            return json_response(self._prediction(request, job_id, job, finished=finished), 201)

        return await self._submit(request, self._denied(request), build)

    async def _get(self, request: Request) -> Response:
        async def render(
            request: Request, job_id: str, job: _Job | None, *, finished: bool
        ) -> Response:
            if job is None:
                return self.error(404, "Not found", None, None)
            return json_response(self._prediction(request, job_id, job, finished=finished))

        return await self._poll(request, request.path_params["id"], self._denied(request), render)

    def _prediction(
        self, request: Request, job_id: str, job: _Job, *, finished: bool
    ) -> dict[str, Any]:
        base = str(request.base_url).rstrip("/")
        prediction: dict[str, Any] = {
            "id": job_id,
            "model": "black-forest-labs/flux-schnell",
            "version": "hidden",
            "input": job.body.get("input", {}),
            "logs": "",
            "output": None,
            "error": None,
            "status": "processing",
            "created_at": "2025-01-01T00:00:00Z",
            "data_removed": False,
            "urls": {
                "get": f"{base}/v1/predictions/{job_id}",
                "cancel": f"{base}/v1/predictions/{job_id}/cancel",
            },
        }
        if job_id in self.cancelled:
            prediction["status"] = "canceled"
        elif not finished:
            pass
        elif isinstance(job.outcome, Blocked):
            prediction.update(
                status="failed",
                error=job.outcome.reason
                or "NSFW content detected. Try running it again, or try a different prompt.",
            )
        elif isinstance(job.outcome, NoImage):
            prediction.update(status="succeeded", output=[])
        else:
            outputs = [self._sample(request, job, i) for i in range(job.extra.get("outputs", 1))]
            prediction.update(
                status="succeeded",
                output=outputs,
                metrics={"predict_time": 1.2, "image_count": len(outputs)},
            )
        return prediction

    async def _cancel(self, request: Request) -> Response:
        await self.record("cancel", request)
        self.cancelled.append(request.path_params["id"])
        return json_response({"id": request.path_params["id"], "status": "canceled"})

    async def _account(self, request: Request) -> Response:
        await self.record("account", request)
        return self._denied(request) or json_response(
            {"type": "user", "username": "fake", "name": "Fake"}
        )


class FakeFal(_TaskFake):
    """fal's queue (see the module docstring)."""

    def __init__(self, api_key: str = "fake-fal-key", pending_polls: int = 2) -> None:
        super().__init__(api_key, pending_polls)

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/{owner}/{app}/requests/{id}/status", self._status),
            Route("/{owner}/{app}/requests/{id}/cancel", self._cancel, methods=["PUT"]),
            Route("/{owner}/{app}/requests/{id}", self._result),
            Route("/{model:path}", self._create, methods=["POST"]),
        ]

    def error(
        self, status: int, message: str, code: str | None, retry_after: float | None
    ) -> Response:
        headers = {"retry-after": f"{retry_after:g}"} if retry_after is not None else None
        return json_response({"detail": message}, status, headers)

    def _denied(self, request: Request) -> Response | None:
        if request.headers.get("authorization") == f"Key {self.api_key}":
            return None
        return self.error(401, "Invalid key", None, None)

    async def _create(self, request: Request) -> Response:
        async def build(request: Request, body: dict[str, Any], step: Step) -> Response:
            size = body.get("image_size", {})
            width, height = (
                (size.get("width", 1024), size.get("height", 1024))
                if isinstance(size, dict)
                else (1024, 1024)
            )
            fmt = "jpeg" if body.get("output_format", "jpeg") == "jpeg" else "png"
            job_id = self._start(body, step, int(width), int(height), fmt)
            self.jobs[job_id].extra["count"] = int(body.get("num_images", 1))
            app = "/".join(request.path_params["model"].split("/")[:2])
            base = f"{str(request.base_url).rstrip('/')}/{app}/requests/{job_id}"
            return json_response(
                {
                    "request_id": job_id,
                    "response_url": base,
                    "status_url": f"{base}/status",
                    "cancel_url": f"{base}/cancel",
                    "queue_position": 0,
                }
            )

        return await self._submit(request, self._denied(request), build)

    async def _status(self, request: Request) -> Response:
        async def render(
            request: Request, job_id: str, job: _Job | None, *, finished: bool
        ) -> Response:
            if job is None:
                return self.error(404, "Request not found", None, None)
            status = (
                "COMPLETED" if finished else "IN_QUEUE" if job.polls_left >= 1 else "IN_PROGRESS"
            )
            return json_response(
                {
                    "status": status,
                    "queue_position": 0,
                    "response_url": str(request.url).removesuffix("/status"),
                },
                202 if not finished else 200,
            )

        return await self._poll(request, request.path_params["id"], self._denied(request), render)

    async def _result(self, request: Request) -> Response:
        await self.record("result", request)
        denied = self._denied(request)
        job = self.jobs.get(request.path_params["id"])
        if denied is not None or job is None:
            return denied or self.error(404, "Request not found", None, None)
        count = job.extra.get("count", 1)
        if isinstance(job.outcome, NoImage):
            return json_response({"images": [], "seed": 1})
        images = [
            {
                "url": self._sample(request, job, i),
                "width": job.width,
                "height": job.height,
                "content_type": MIME[job.fmt],
            }
            for i in range(count)
        ]
        nsfw = [isinstance(job.outcome, Blocked)] * count
        return json_response(
            {
                "images": images,
                "timings": {"inference": 0.5},
                "seed": 42,
                "has_nsfw_concepts": nsfw,
                "prompt": job.body.get("prompt"),
            }
        )

    async def _cancel(self, request: Request) -> Response:
        await self.record("cancel", request)
        self.cancelled.append(request.path_params["id"])
        return json_response({"status": "CANCELLATION_REQUESTED"}, 202)
