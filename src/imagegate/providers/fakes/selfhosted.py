"""Fake self-hosted engines: AUTOMATIC1111/Forge and ComfyUI, in their real wire formats.

* :class:`FakeA1111`: ``POST /sdapi/v1/txt2img`` and ``/sdapi/v1/img2img`` answer
  ``{"images": [base64 PNG…], "parameters", "info"}`` with ``batch_size`` images of the
  requested ``width``×``height``; ``GET /sdapi/v1/sd-models``. With ``auth`` set it wants
  HTTP Basic (``--api-auth``) and answers 401 ``{"detail": "Incorrect username or
  password"}``; validation errors are FastAPI's 422 ``{"detail": [{"loc", "msg", "type"}]}``,
  server errors ``{"error", "detail", "body", "errors"}``.
* :class:`FakeComfyUI`: ``POST /upload/image`` (multipart ``image``) → ``{"name",
  "subfolder", "type"}``; ``POST /prompt`` checks that every node of the workflow has a
  ``class_type`` and that ``LoadImage`` nodes name an uploaded file (else 400 with
  ``{"error": {"type": "prompt_outputs_failed_validation", …}, "node_errors"}``) →
  ``{"prompt_id", "number", "node_errors": {}}``; ``GET /history/{id}`` is ``{}`` for
  ``pending_polls`` calls, then the entry with ``outputs`` of each ``SaveImage`` node (one
  image per ``batch_size`` of the ``EmptyLatentImage``, or the loaded image's size) and
  ``status``; ``GET /view``; ``POST /queue``; ``GET /system_stats``.

Scripted routes: ``"generate"`` (A1111), ``"submit"``/``"poll"`` (ComfyUI). A scripted
:class:`~.script.Blocked` makes ComfyUI's run fail with an ``execution_error``.
"""

from __future__ import annotations

import base64
import io
import secrets
from typing import Any

import pybase64
from PIL import Image
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from imagegate.providers.fakes.images import image_bytes
from imagegate.providers.fakes.script import Blocked, Call, FakeUpstream, Step, json_response
from imagegate.providers.fakes.tasks import _Job, _TaskFake

__all__ = ["FakeA1111", "FakeComfyUI"]


class FakeA1111(FakeUpstream):
    """AUTOMATIC1111's ``/sdapi/v1`` (see the module docstring)."""

    def __init__(self, auth: str | None = None) -> None:
        self.auth = auth
        super().__init__()

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/sdapi/v1/txt2img", self._draw, methods=["POST"]),
            Route("/sdapi/v1/img2img", self._draw, methods=["POST"]),
            Route("/sdapi/v1/sd-models", self._models),
        ]

    def error(
        self, status: int, message: str, code: str | None, retry_after: float | None
    ) -> Response:
        headers = {"retry-after": f"{retry_after:g}"} if retry_after is not None else None
        if status == 422:
            detail = [{"loc": ["body", "width"], "msg": message, "type": "value_error"}]
            return json_response({"detail": detail}, status, headers)
        if status >= 500:
            body = {"error": "RuntimeError", "detail": "", "body": "", "errors": message}
            return json_response(body, status, headers)
        return json_response({"detail": message}, status, headers)

    def empty(self, route: str, request: Request) -> Response:
        return json_response({"images": [], "parameters": {}, "info": "{}"})

    def _denied(self, request: Request) -> Response | None:
        if self.auth is None:
            return None
        expected = "Basic " + base64.b64encode(self.auth.encode()).decode()
        if request.headers.get("authorization") == expected:
            return None
        return json_response({"detail": "Incorrect username or password"}, 401)

    async def _draw(self, request: Request) -> Response:
        call = await self.record("generate", request)
        denied = self._denied(request)
        if denied is not None:
            return denied

        async def success(step: Step) -> Response:
            body = call.json or {}
            width, height = int(body.get("width", 512)), int(body.get("height", 512))
            count = int(body.get("batch_size", 1)) * int(body.get("n_iter", 1))
            images = [
                pybase64.b64encode(image_bytes(width, height, "png", i)).decode()
                for i in range(count)
            ]
            info = {"prompt": body.get("prompt"), "seed": 1234, "width": width, "height": height}
            return json_response({"images": images, "parameters": body, "info": str(info)})

        return await self.play("generate", request, success)

    async def _models(self, request: Request) -> Response:
        await self.record("models", request)
        return self._denied(request) or json_response(
            [
                {
                    "title": "sd_xl_base_1.0.safetensors [31e35c80fc]",
                    "model_name": "sd_xl_base_1.0",
                    "hash": "31e35c80fc",
                    "sha256": "31e35c80fc4829d14f90153f4c74cd59c90b779f6afe05a74cd6120b893f7e5b",
                    "filename": "/models/Stable-diffusion/sd_xl_base_1.0.safetensors",
                    "config": None,
                }
            ]
        )


class FakeComfyUI(_TaskFake):
    """ComfyUI's HTTP API (see the module docstring)."""

    def __init__(self, pending_polls: int = 1) -> None:
        super().__init__("", pending_polls)
        self.uploads: dict[str, bytes] = {}
        self.outputs: dict[str, bytes] = {}
        self.deleted: list[str] = []

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/prompt", self._prompt, methods=["POST"]),
            Route("/history/{id}", self._history),
            Route("/view", self._view),
            Route("/upload/image", self._upload, methods=["POST"]),
            Route("/queue", self._queue, methods=["POST"]),
            Route("/system_stats", self._stats),
        ]

    def error(
        self, status: int, message: str, code: str | None, retry_after: float | None
    ) -> Response:
        headers = {"retry-after": f"{retry_after:g}"} if retry_after is not None else None
        body = {
            "error": {"type": code or "error", "message": message, "details": "", "extra_info": {}},
            "node_errors": {},
        }
        return json_response(body, status, headers)

    async def _upload(self, request: Request) -> Response:
        async with request.form() as form:
            upload = form.get("image")
            fields = {k: v for k, v in form.multi_items() if isinstance(v, str)}
            if upload is None or isinstance(upload, str):
                return Response("no image", 400)
            name = upload.filename or "upload.png"
            data = await upload.read()
        self.uploads[name] = data
        files = {"image": [(name, upload.content_type or "", len(data))]}
        headers = {k.lower(): v for k, v in request.headers.items()}
        self.calls.append(
            Call("upload", "POST", request.url.path, {}, headers, form=fields, files=files)
        )
        return json_response({"name": name, "subfolder": "", "type": "input"})

    async def _prompt(self, request: Request) -> Response:
        async def build(request: Request, body: dict[str, Any], step: Step) -> Response:
            graph = body.get("prompt")
            problem = self._validate(graph)
            assert problem is not None or isinstance(graph, dict)
            if problem is not None:
                node, message = problem
                return json_response(
                    {
                        "error": {
                            "type": "prompt_outputs_failed_validation",
                            "message": "Prompt outputs failed validation",
                            "details": "",
                            "extra_info": {},
                        },
                        "node_errors": {
                            node: {
                                "errors": [
                                    {"type": "value_not_in_list", "message": message,
                                     "details": message, "extra_info": {}}
                                ],
                                "dependent_outputs": [],
                                "class_type": "LoadImage",
                            }
                        },
                    },
                    400,
                )  # fmt: skip
            assert isinstance(graph, dict)
            width, height = self._size(graph)
            job_id = self._start(body, step, width, height, "png")
            self.jobs[job_id].extra["count"] = self._batch(graph)
            return json_response({"prompt_id": job_id, "number": len(self.jobs), "node_errors": {}})

        return await self._submit(request, None, build)

    def _validate(self, graph: Any) -> tuple[str, str] | None:
        if not isinstance(graph, dict) or not graph:
            return "0", "no prompt"
        for node, spec in graph.items():
            if not isinstance(spec, dict) or "class_type" not in spec:
                return str(node), "node has no class_type"
            if spec["class_type"] == "LoadImage":
                name = spec.get("inputs", {}).get("image")
                if name not in self.uploads:
                    return str(node), f"Invalid image file: {name}"
        return None

    def _nodes(self, graph: dict[str, Any], kind: str) -> list[dict[str, Any]]:
        return [n.get("inputs", {}) for n in graph.values() if n.get("class_type") == kind]

    def _size(self, graph: dict[str, Any]) -> tuple[int, int]:
        for inputs in self._nodes(graph, "EmptyLatentImage"):
            return int(inputs.get("width", 512)), int(inputs.get("height", 512))
        for inputs in self._nodes(graph, "LoadImage"):
            with Image.open(io.BytesIO(self.uploads[inputs["image"]])) as loaded:
                return loaded.size
        return 512, 512

    def _batch(self, graph: dict[str, Any]) -> int:
        for inputs in self._nodes(graph, "EmptyLatentImage"):
            return int(inputs.get("batch_size", 1))
        return 1

    async def _history(self, request: Request) -> Response:
        async def render(
            request: Request, job_id: str, job: _Job | None, *, finished: bool
        ) -> Response:
            if job is None or not finished:
                return json_response({})
            graph = job.body.get("prompt", {})
            savers = [n for n, s in graph.items() if s.get("class_type") == "SaveImage"]
            if isinstance(job.outcome, Blocked):
                status = {
                    "status_str": "error",
                    "completed": False,
                    "messages": [
                        ["execution_start", {"prompt_id": job_id}],
                        ["execution_error", {"prompt_id": job_id, "node_id": "3",
                                             "exception_type": "torch.OutOfMemoryError",
                                             "exception_message": "CUDA out of memory"}],
                    ],
                }  # fmt: skip
                return json_response({job_id: {"prompt": [], "outputs": {}, "status": status}})
            outputs: dict[str, Any] = {}
            for node in savers:
                files = []
                for i in range(job.extra.get("count", 1)):
                    name = f"imagegate_{secrets.token_hex(4)}_.png"
                    self.outputs[name] = image_bytes(job.width, job.height, "png", i)
                    files.append({"filename": name, "subfolder": "", "type": "output"})
                outputs[node] = {"images": files}
            status = {"status_str": "success", "completed": True, "messages": []}
            entry = {"prompt": [0, job_id, graph, {}, savers], "outputs": outputs, "status": status}
            return json_response({job_id: entry})

        return await self._poll(request, request.path_params["id"], None, render)

    async def _view(self, request: Request) -> Response:
        await self.record("view", request)
        data = self.outputs.get(request.query_params.get("filename", ""))
        if data is None or request.query_params.get("type") != "output":
            return Response(status_code=404)
        return Response(data, media_type="image/png")

    async def _queue(self, request: Request) -> Response:
        call = await self.record("queue", request)
        self.deleted.extend((call.json or {}).get("delete", []))
        return Response(status_code=200)

    async def _stats(self, request: Request) -> Response:
        await self.record("stats", request)
        return json_response(
            {
                "system": {"os": "posix", "comfyui_version": "0.3.66", "python_version": "3.12"},
                "devices": [{"name": "cuda:0 NVIDIA H100", "type": "cuda", "vram_total": 85e9}],
            }
        )
