"""ComfyUI as a task upstream, driven by the operator's own API-format workflows.

A deployment names a workflow file (``options.workflow``: an API-format JSON export, "Save
(API)"; absolute, or relative to the gateway's working directory) and where the request goes
into it (``options.inputs``: ``"prompt" = "6.text"`` means node ``6``'s input ``text``).
Bindings: ``prompt``, ``negative_prompt``, ``seed``, ``width``,
``height``, ``batch_size``, ``checkpoint`` (the deployment's ``model``), ``denoise``,
``image`` and ``mask`` (a ``LoadImage`` node's ``image``). A workflow file may carry the same
table itself under the top-level key ``"imagegate"`` (removed before it is sent); the
deployment's table wins. ``options.output_node`` restricts which node's images are returned.
Without ``options.workflow`` the packaged text-to-image workflow (``comfyui_workflows/``) is
used.

Calls: input images go up with ``POST /upload/image`` (multipart ``image``, ``type=input``,
``overwrite``) → ``{"name", "subfolder", "type"}``; ``POST /prompt`` ``{"prompt": workflow,
"client_id"}`` → ``{"prompt_id", "number", "node_errors"}`` (400 with ``{"error": {"type",
"message", "details"}, "node_errors"}`` when the workflow does not validate); ``GET
/history/{prompt_id}`` is ``{}`` until the run is done, then holds ``outputs`` (per node,
``images`` of ``{"filename", "subfolder", "type"}``) and ``status`` (``status_str``
``success``/``error``, ``messages``); each image is read with ``GET /view?filename=&subfolder=
&type=``. Cancel: ``POST /queue {"delete": [id]}``. Check: ``GET /system_stats``.

Masks: ComfyUI's ``LoadImage`` turns an RGBA PNG's transparent pixels into its MASK output,
the area to repaint — the domain's own convention. A ``mask`` binding gets the mask PNG as it
is; without one, the mask's alpha is put into the input image itself.
``COMFYUI_BASE_URL`` makes the model available.
"""

from __future__ import annotations

import functools
import secrets
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any, Final

import orjson
from pydantic import BaseModel, ConfigDict, Field, RootModel, ValidationError

from imagegate.core.requests import ImageRequest, ImageResult
from imagegate.core.upstream import JobStatus, ProviderContext, UpstreamJob
from imagegate.errors import (
    ImagegateError,
    InvalidRequest,
    ServerError,
    UpstreamError,
    UpstreamRejected,
)
from imagegate.providers._http import Answer, answer_error, join, json_body, parse, send
from imagegate.providers._masks import with_mask_alpha
from imagegate.providers.errors import redact
from imagegate.providers.output import upstream_image

__all__ = ["ComfyUIOptions", "ComfyUIProvider", "load_workflow"]

_BINDINGS: Final = frozenset(
    {"prompt", "negative_prompt", "seed", "width", "height", "batch_size", "checkpoint",
     "denoise", "image", "mask"}
)  # fmt: skip
_SEED_MAX: Final = 2**48


class ComfyUIOptions(BaseModel):
    """A ComfyUI deployment's ``options`` table."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    workflow: str | None = None
    """Path of an API-format workflow JSON file (default: the packaged txt2img workflow)."""
    inputs: dict[str, str] = {}
    output_node: str | None = None
    poll_interval: float = Field(default=0.5, gt=0)


@functools.lru_cache(maxsize=32)
def load_workflow(path: str | None) -> tuple[bytes, dict[str, str]]:
    """The workflow's JSON (without its ``imagegate`` table) and its declared bindings."""
    try:
        if path is None:
            raw = (
                resources.files("imagegate.providers")
                .joinpath("comfyui_workflows/txt2img.json")
                .read_bytes()
            )
        else:
            raw = Path(path).expanduser().read_bytes()
        graph = orjson.loads(raw)
    except (OSError, orjson.JSONDecodeError) as exc:
        raise ServerError(f"cannot read the comfyui workflow {path!r}: {exc}") from None
    if not isinstance(graph, dict):
        raise ServerError(f"the comfyui workflow {path!r} is not an API-format JSON object")
    declared = graph.pop("imagegate", {}).get("inputs", {})
    return orjson.dumps(graph), {str(k): str(v) for k, v in declared.items()}


class _Queued(BaseModel):
    model_config = ConfigDict(extra="ignore")

    prompt_id: str = Field(min_length=1)
    number: int | None = None


class _Uploaded(BaseModel):
    model_config = ConfigDict(extra="ignore")

    name: str
    subfolder: str = ""
    type: str = "input"


class _File(BaseModel):
    model_config = ConfigDict(extra="ignore")

    filename: str
    subfolder: str = ""
    type: str = "output"


class _NodeOutput(BaseModel):
    model_config = ConfigDict(extra="ignore")

    images: list[_File] = []


class _Status(BaseModel):
    model_config = ConfigDict(extra="ignore")

    status_str: str | None = None
    completed: bool = False
    messages: list[Any] = []


class _Entry(BaseModel):
    model_config = ConfigDict(extra="ignore")

    outputs: dict[str, _NodeOutput] = {}
    status: _Status = _Status()


class _History(RootModel[dict[str, _Entry]]):
    pass


class ComfyUIProvider:
    """``comfyui``: upload inputs, queue the workflow, poll history, read the images."""

    name = "comfyui"

    def has_credentials(self, credentials: Mapping[str, str]) -> bool:
        return bool(credentials.get("base_url"))

    def _options(self, ctx: ProviderContext) -> ComfyUIOptions:
        return ctx.options_as(ComfyUIOptions, self.name)

    def _workflow(self, ctx: ProviderContext) -> tuple[dict[str, Any], dict[str, str]]:
        options = self._options(ctx)
        raw, declared = load_workflow(options.workflow)
        bindings = {**declared, **options.inputs}
        unknown = set(bindings) - _BINDINGS
        if unknown:
            raise ServerError(f"unknown comfyui bindings {sorted(unknown)}")
        return orjson.loads(raw), bindings

    def images_per_call(self, request: ImageRequest, ctx: ProviderContext) -> int:
        return 8 if "batch_size" in self._workflow(ctx)[1] else 1

    def dropped_params(self, request: ImageRequest, ctx: ProviderContext) -> list[str]:
        bindings = self._workflow(ctx)[1]
        set_here = {
            "moderation": request.moderation,
            "style": request.style,
            "input_fidelity": request.input_fidelity,
            "mask": request.mask if "mask" not in bindings and "image" not in bindings else None,
        }
        return sorted(name for name, value in set_here.items() if value is not None)

    def _base(self, ctx: ProviderContext) -> str:
        base = ctx.base_url or ctx.credentials.get("base_url")
        if not base:
            raise UpstreamRejected("no COMFYUI_BASE_URL is set", code="upstream_misconfigured")
        return base

    async def submit(self, request: ImageRequest, ctx: ProviderContext) -> UpstreamJob:
        graph, bindings = self._workflow(ctx)
        if request.operation not in ("generate", "edit", "variation"):
            raise InvalidRequest(
                f"the comfyui upstream cannot {request.operation.replace('_', ' ')}",
                code="unsupported_operation",
            )
        if request.images and "image" not in bindings:
            raise InvalidRequest(
                "this comfyui workflow takes no input image", code="unsupported_operation"
            )
        if not request.images and "image" in bindings:
            raise InvalidRequest("this comfyui workflow needs an input image", param="image")
        seed = request.extras.get("seed")
        values: dict[str, Any] = {
            "prompt": request.prompt,
            "seed": seed if isinstance(seed, int) else secrets.randbelow(_SEED_MAX),
            "width": request.width,
            "height": request.height,
            "batch_size": request.n,
        }
        if "negative_prompt" in request.extras:  # else the workflow keeps its own
            values["negative_prompt"] = request.extras["negative_prompt"]
        if ctx.upstream_model and ctx.upstream_model != "*":
            values["checkpoint"] = ctx.upstream_model
        if request.strength is not None:
            values["denoise"] = request.strength
        if request.images:
            values.update(await self._inputs(request, ctx, bindings))
        for key, target in bindings.items():
            if key in values:
                _set(graph, target, values[key])
        answer = await send(
            ctx, "POST", join(self._base(ctx), "prompt"), provider=self.name,
            headers={"content-type": "application/json"},
            content=json_body({"prompt": graph, "client_id": ctx.request_id}), max_bytes=1 << 20,
        )  # fmt: skip
        if not answer.ok:
            raise self._error(answer, ctx)
        queued = parse(_Queued, answer.body, self.name)
        return UpstreamJob(queued.prompt_id, poll_after=self._options(ctx).poll_interval)

    async def _inputs(
        self, request: ImageRequest, ctx: ProviderContext, bindings: Mapping[str, str]
    ) -> dict[str, str]:
        """Uploads the input image (and mask): the names the workflow's nodes load."""
        image, mask = request.images[0], request.mask
        if mask is not None and "mask" in bindings:
            return {
                "mask": await self._upload(ctx, mask.data, "mask.png"),
                "image": await self._upload(ctx, image.data, f"image.{image.format}"),
            }
        if mask is not None:
            return {"image": await self._upload(ctx, with_mask_alpha(image, mask), "image.png")}
        return {"image": await self._upload(ctx, image.data, f"image.{image.format}")}

    async def _upload(self, ctx: ProviderContext, data: bytes, filename: str) -> str:
        name = f"imagegate-{secrets.token_hex(8)}-{filename}"
        answer = await send(
            ctx, "POST", join(self._base(ctx), "upload/image"), provider=self.name,
            files=[("image", (name, data, "application/octet-stream"))],
            data={"type": "input", "overwrite": "true"}, max_bytes=1 << 16,
        )  # fmt: skip
        if not answer.ok:
            raise self._error(answer, ctx)
        uploaded = parse(_Uploaded, answer.body, self.name)
        return f"{uploaded.subfolder}/{uploaded.name}" if uploaded.subfolder else uploaded.name

    async def poll(self, job: UpstreamJob, ctx: ProviderContext) -> JobStatus:
        interval = self._options(ctx).poll_interval
        answer = await send(
            ctx, "GET", join(self._base(ctx), f"history/{job.id}"), provider=self.name,
            max_bytes=8 << 20,
        )  # fmt: skip
        if not answer.ok:
            raise self._error(answer, ctx)
        entry = parse(_History, answer.body, self.name).root.get(job.id)
        if entry is None:
            return JobStatus(poll_after=interval)
        if entry.status.status_str == "error":
            raise UpstreamError(
                f"comfyui run failed: {_execution_error(entry.status.messages)}",
                code="upstream_task_failed",
            )
        if not entry.status.completed and entry.status.status_str != "success":
            return JobStatus(poll_after=interval)
        only = self._options(ctx).output_node
        files = [
            file
            for node, output in entry.outputs.items()
            if only is None or node == only
            for file in output.images
            if file.type == "output"
        ]
        if not files:
            raise UpstreamError(
                "comfyui finished without an output image", code="upstream_no_image"
            )
        images = [upstream_image(await self._view(ctx, file)) for file in files]
        return JobStatus(result=ImageResult(images=images))

    async def _view(self, ctx: ProviderContext, file: _File) -> bytes:
        params = {"filename": file.filename, "subfolder": file.subfolder, "type": file.type}
        answer = await send(
            ctx, "GET", join(self._base(ctx), "view"), provider=self.name, params=params,
            max_bytes=64 << 20,
        )  # fmt: skip
        if not answer.ok:
            raise self._error(answer, ctx)
        return answer.body

    async def cancel(self, job: UpstreamJob, ctx: ProviderContext) -> None:
        """Take the prompt off the queue (a running prompt finishes; its images stay there)."""
        await send(
            ctx, "POST", join(self._base(ctx), "queue"), provider=self.name,
            headers={"content-type": "application/json"},
            content=json_body({"delete": [job.id]}), max_bytes=1 << 16,
        )  # fmt: skip

    async def check(self, ctx: ProviderContext) -> str:
        """``GET /system_stats`` (free); also reads the deployment's workflow."""
        self._workflow(ctx)
        answer = await send(
            ctx, "GET", join(self._base(ctx), "system_stats"), provider=self.name,
            max_bytes=1 << 20,
        )  # fmt: skip
        if not answer.ok:
            raise self._error(answer, ctx)
        stats = parse(_Stats, answer.body, self.name)
        return f"comfyui {stats.system.get('comfyui_version', '?')}, {len(stats.devices)} devices"

    def _error(self, answer: Answer, ctx: ProviderContext) -> ImagegateError:
        return answer_error(
            answer,
            redact(_message(answer), ctx.credentials),
            provider=self.name,
            credentials=ctx.credentials,
        )


class _Stats(BaseModel):
    model_config = ConfigDict(extra="ignore")

    system: dict[str, Any] = {}
    devices: list[Any] = []


def _set(graph: dict[str, Any], target: str, value: Any) -> None:
    node, _, name = target.partition(".")
    inputs = graph.get(node, {}).get("inputs") if isinstance(graph.get(node), dict) else None
    if not name or not isinstance(inputs, dict):
        raise ServerError(f"the comfyui workflow has no node {node!r} for binding {target!r}")
    inputs[name] = value


def _execution_error(messages: list[Any]) -> str:
    for message in messages:
        if isinstance(message, list) and len(message) == 2 and message[0] == "execution_error":
            data = message[1] if isinstance(message[1], dict) else {}
            return f"{data.get('exception_type', 'error')}: {data.get('exception_message', '')}"
    return "execution error"


class _ErrorBody(BaseModel):
    model_config = ConfigDict(extra="ignore")

    error: dict[str, Any] | str | None = None
    node_errors: dict[str, Any] = {}


def _message(answer: Answer) -> str:
    try:
        body = _ErrorBody.model_validate_json(answer.body)
    except ValidationError:
        return answer.text()[:200]
    if isinstance(body.error, dict):
        parts = [str(body.error.get("message", "")), str(body.error.get("details", ""))]
        for node, info in list(body.node_errors.items())[:2]:
            errors = info.get("errors", []) if isinstance(info, dict) else []
            parts += [f"node {node}: {e.get('details') or e.get('message')}" for e in errors[:2]]
        return "; ".join(part for part in parts if part)
    return body.error or ""
