"""Black Forest Labs (FLUX) as a task upstream.

``POST {base}/v1/{model}`` with the key in ``x-key`` answers ``{"id", "polling_url"}``; the
task is polled with ``GET polling_url`` (``{"id", "status", "result", "progress"}``) until
``Ready``, whose ``result.sample`` is a signed URL valid for about ten minutes: it is
downloaded at once. ``Content Moderated``/``Request Moderated`` are safety outcomes;
``Error``/``Failed``/``Task not found`` are upstream failures. One image per task (the router
fans ``n`` out). ``BFL_API_KEY``; ``BFL_BASE_URL`` redirects the deployment.

Sizes: FLUX 1.1 [pro] and [dev] take ``width``/``height`` in multiples of 32; Ultra and
Kontext take ``aspect_ratio`` (chosen by the model name, or ``options.size_mode``). Edits
(Kontext) send the first input as ``input_image`` and up to three more as
``input_image_2``…``_4``. PNG is asked for unless the client wants JPEG.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final, Literal

import pybase64
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from imagegate.core.requests import ImageRequest, ImageResult
from imagegate.core.upstream import JobStatus, ProviderContext, UpstreamJob
from imagegate.errors import (
    ContentPolicyViolation,
    ImagegateError,
    InvalidRequest,
    UpstreamError,
)
from imagegate.providers._common import aspect_ratio_text, same_site, set_fields, snap
from imagegate.providers._http import Answer, answer_error, join, json_body, parse, send
from imagegate.providers.errors import redact
from imagegate.providers.output import upstream_image

__all__ = ["BFLOptions", "BFLProvider"]

BFL_BASE_URL: Final = "https://api.bfl.ai"
_MODERATED: Final[dict[str, Literal["prompt", "output"]]] = {
    "Content Moderated": "output",
    "Request Moderated": "prompt",
}
_FAILED: Final = frozenset({"Error", "Failed", "Task not found"})


class BFLOptions(BaseModel):
    """A BFL deployment's ``options`` table."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    size_mode: Literal["dimensions", "aspect_ratio"] | None = None
    safety_tolerance: int | None = Field(default=None, ge=0, le=6)
    prompt_upsampling: bool | None = None
    poll_interval: float = Field(default=0.5, gt=0)


class _Submitted(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: str = Field(min_length=1)
    polling_url: str | None = None


class _Sample(BaseModel):
    model_config = ConfigDict(extra="ignore")

    sample: str | None = None
    seed: int | None = None


class _Poll(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: str | None = None
    status: str
    result: _Sample | None = None
    progress: float | None = None
    details: dict[str, Any] | None = None


class BFLProvider:
    """``bfl``: submit, poll ``polling_url``, download the sample before it expires."""

    name = "bfl"

    def has_credentials(self, credentials: Mapping[str, str]) -> bool:
        return bool(credentials.get("api_key"))

    def _options(self, ctx: ProviderContext) -> BFLOptions:
        return ctx.options_as(BFLOptions, self.name)

    def images_per_call(self, request: ImageRequest, ctx: ProviderContext) -> int:
        return 1

    def dropped_params(self, request: ImageRequest, ctx: ProviderContext) -> list[str]:
        return set_fields(request, "moderation", "style", "input_fidelity", "mask")

    def _base(self, ctx: ProviderContext) -> str:
        return ctx.base_url or BFL_BASE_URL

    def _headers(self, ctx: ProviderContext) -> dict[str, str]:
        return {"x-key": ctx.credentials.get("api_key", ""), "accept": "application/json"}

    def body(self, request: ImageRequest, ctx: ProviderContext) -> dict[str, Any]:
        """The task body for ``request`` (see the module docstring)."""
        options = self._options(ctx)
        mode = options.size_mode or (
            "aspect_ratio"
            if "ultra" in ctx.upstream_model or "kontext" in ctx.upstream_model
            else "dimensions"
        )
        body: dict[str, Any] = {
            "prompt": request.prompt,
            "output_format": "jpeg" if request.output_format == "jpeg" else "png",
        }
        if mode == "dimensions":
            body["width"] = snap(request.width, 32, 256, 1440)
            body["height"] = snap(request.height, 32, 256, 1440)
        else:
            body["aspect_ratio"] = aspect_ratio_text(request.width, request.height)
        for key in ("seed", "safety_tolerance", "prompt_upsampling", "steps", "guidance", "raw"):
            if key in request.extras:
                body[key] = request.extras[key]
        if options.safety_tolerance is not None:
            body.setdefault("safety_tolerance", options.safety_tolerance)
        if options.prompt_upsampling is not None:
            body.setdefault("prompt_upsampling", options.prompt_upsampling)
        for index, image in enumerate(request.images[:4]):
            key = "input_image" if index == 0 else f"input_image_{index + 1}"
            body[key] = pybase64.b64encode(image.data).decode("ascii")
        return body

    async def submit(self, request: ImageRequest, ctx: ProviderContext) -> UpstreamJob:
        if request.operation not in ("generate", "edit"):
            raise InvalidRequest(
                f"the bfl upstream cannot {request.operation.replace('_', ' ')}",
                code="unsupported_operation",
            )
        headers = {**self._headers(ctx), "content-type": "application/json"}
        url = join(self._base(ctx), f"v1/{ctx.upstream_model}")
        body = json_body(self.body(request, ctx))
        answer = await send(
            ctx, "POST", url, provider=self.name, headers=headers, content=body, max_bytes=1 << 20
        )
        if not answer.ok:
            raise self._error(answer, ctx)
        submitted = parse(_Submitted, answer.body, self.name)
        polling = submitted.polling_url
        if not same_site(polling, self._base(ctx)):
            polling = join(self._base(ctx), f"v1/get_result?id={submitted.id}")
        interval = self._options(ctx).poll_interval
        return UpstreamJob(submitted.id, {"polling_url": polling or ""}, poll_after=interval)

    async def poll(self, job: UpstreamJob, ctx: ProviderContext) -> JobStatus:
        answer = await send(
            ctx, "GET", job.handles["polling_url"], provider=self.name,
            headers=self._headers(ctx), max_bytes=1 << 20,
        )  # fmt: skip
        if not answer.ok:
            raise self._error(answer, ctx)
        status = parse(_Poll, answer.body, self.name)
        interval = self._options(ctx).poll_interval
        if status.status == "Ready":
            sample = status.result.sample if status.result else None
            if not sample or ctx.fetch is None:
                raise UpstreamError("bfl reported Ready without a sample", code="upstream_no_image")
            image = upstream_image(await ctx.fetch(sample))
            return JobStatus(result=ImageResult(images=[image]))
        if status.status in _MODERATED:
            raise ContentPolicyViolation(
                f"bfl: {status.status}",
                stage=_MODERATED[status.status],
                reason=status.status.upper().replace(" ", "_"),
            )
        if status.status in _FAILED:
            raise UpstreamError(f"bfl task {status.status.lower()}", code="upstream_task_failed")
        progress = round(status.progress * 100) if status.progress is not None else None
        return JobStatus(progress=progress, poll_after=interval)

    async def cancel(self, job: UpstreamJob, ctx: ProviderContext) -> None:
        """BFL has no cancel call; an abandoned task simply finishes upstream."""

    async def check(self, ctx: ProviderContext) -> str:
        """``GET /v1/credits``: the account's credit balance (free)."""
        answer = await send(
            ctx, "GET", join(self._base(ctx), "v1/credits"), provider=self.name,
            headers=self._headers(ctx), max_bytes=1 << 16,
        )  # fmt: skip
        if not answer.ok:
            raise self._error(answer, ctx)
        return "key accepted"

    def _error(self, answer: Answer, ctx: ProviderContext) -> ImagegateError:
        message = _detail(answer)
        return answer_error(
            answer,
            redact(message, ctx.credentials),
            provider=self.name,
            credentials=ctx.credentials,
        )


class _Detail(BaseModel):
    model_config = ConfigDict(extra="ignore")

    detail: str | list[dict[str, Any]] | None = None


def _detail(answer: Answer) -> str:
    try:
        detail = _Detail.model_validate_json(answer.body).detail
    except ValidationError:
        return ""
    if isinstance(detail, list):
        return "; ".join(str(item.get("msg", "")) for item in detail[:3])
    return detail or ""
