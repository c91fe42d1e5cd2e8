"""Alibaba Cloud Model Studio (DashScope): Qwen-Image, Qwen-Image-Edit and Wan text-to-image.

Generation is an asynchronous task: ``POST {base}/api/v1/services/aigc/text2image/
image-synthesis`` with ``Authorization: Bearer`` and ``X-DashScope-Async: enable``, body
``{"model", "input": {"prompt", "negative_prompt"}, "parameters": {"size": "W*H", "n",
"seed", "prompt_extend", "watermark"}}`` → ``{"output": {"task_id", "task_status"},
"request_id"}``; ``GET {base}/api/v1/tasks/{task_id}`` answers ``task_status`` ``PENDING`` →
``RUNNING`` → ``SUCCEEDED`` (``output.results[].url``, valid for 24 h: downloaded at once) or
``FAILED``/``CANCELED``/``UNKNOWN`` (``output.code``/``message``).

Qwen-Image-Edit answers in one call on the multimodal endpoint: ``POST {base}/api/v1/
services/aigc/multimodal-generation/generation`` with ``{"model", "input": {"messages":
[{"role": "user", "content": [{"image": data URI}, {"text": prompt}]}]}, "parameters":
{"negative_prompt", "watermark"}}`` → ``output.choices[0].message.content[].image``.

Sizes: Qwen-Image takes five sizes (1664*928, 1472*1140, 1328*1328, 1140*1472, 928*1664):
the nearest in aspect ratio is sent; Wan takes any ``W*H`` within 512…1440 a side. ``n``:
Qwen-Image draws one image per task, Wan up to four. Errors are ``{"request_id", "code",
"message"}``; ``DataInspectionFailed`` (the input or output failed the content check) is a
safety outcome, ``Arrearage`` an exhausted account. ``DASHSCOPE_API_KEY``;
``DASHSCOPE_BASE_URL`` (default the international endpoint) picks the region.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Final

import pybase64
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from imagegate.core.requests import ImageRequest, ImageResult
from imagegate.core.upstream import JobStatus, ProviderContext, UpstreamJob
from imagegate.errors import (
    ContentPolicyViolation,
    ImagegateError,
    InvalidRequest,
    UpstreamError,
    UpstreamRejected,
)
from imagegate.providers._common import set_fields, snap
from imagegate.providers._http import Answer, answer_error, join, json_body, parse, send
from imagegate.providers.errors import redact
from imagegate.providers.output import no_image, upstream_image

__all__ = ["DashScopeOptions", "DashScopeProvider"]

DASHSCOPE_BASE_URL: Final = "https://dashscope-intl.aliyuncs.com"
QWEN_SIZES: Final = ((1664, 928), (1472, 1140), (1328, 1328), (1140, 1472), (928, 1664))
_SAFETY: Final = frozenset({"DataInspectionFailed", "IPInfringementSuspect"})
_QUOTA: Final = frozenset({"Arrearage", "AllocationQuota.FreeTierOnly"})
_DONE_BADLY: Final = frozenset({"FAILED", "CANCELED", "UNKNOWN"})


class DashScopeOptions(BaseModel):
    """A DashScope deployment's ``options`` table."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    prompt_extend: bool | None = None
    watermark: bool = False
    poll_interval: float = Field(default=1.0, gt=0)


class _Output(BaseModel):
    model_config = ConfigDict(extra="ignore")

    task_id: str | None = None
    task_status: str | None = None
    results: list[dict[str, Any]] = []
    code: str | None = None
    message: str | None = None
    choices: list[dict[str, Any]] = []


class _Answer(BaseModel):
    model_config = ConfigDict(extra="ignore")

    request_id: str | None = None
    output: _Output = _Output()


def is_edit_model(model: str) -> bool:
    return model.startswith("qwen-image-edit")


class DashScopeProvider:
    """``dashscope``: async image-synthesis tasks, and Qwen-Image-Edit in one call."""

    name = "dashscope"

    def has_credentials(self, credentials: Mapping[str, str]) -> bool:
        return bool(credentials.get("api_key"))

    def _options(self, ctx: ProviderContext) -> DashScopeOptions:
        return ctx.options_as(DashScopeOptions, self.name)

    def images_per_call(self, request: ImageRequest, ctx: ProviderContext) -> int:
        return 4 if ctx.upstream_model.startswith("wan") else 1

    def dropped_params(self, request: ImageRequest, ctx: ProviderContext) -> list[str]:
        return set_fields(request, "moderation", "style", "input_fidelity", "mask")

    def _base(self, ctx: ProviderContext) -> str:
        return ctx.base_url or DASHSCOPE_BASE_URL

    def _headers(self, ctx: ProviderContext) -> dict[str, str]:
        return {"authorization": f"Bearer {ctx.credentials.get('api_key', '')}"}

    def size(self, request: ImageRequest, ctx: ProviderContext) -> str:
        """``"W*H"``: Qwen-Image's nearest listed shape, or Wan's free size."""
        if ctx.upstream_model.startswith("wan"):
            width, height = snap(request.width, 8, 512, 1440), snap(request.height, 8, 512, 1440)
            return f"{width}*{height}"
        wanted = math.log(request.width / request.height)
        width, height = min(QWEN_SIZES, key=lambda s: abs(math.log(s[0] / s[1]) - wanted))
        return f"{width}*{height}"

    def _parameters(self, request: ImageRequest, ctx: ProviderContext) -> dict[str, Any]:
        options = self._options(ctx)
        parameters: dict[str, Any] = {"watermark": options.watermark}
        if options.prompt_extend is not None:
            parameters["prompt_extend"] = options.prompt_extend
        for key in ("seed", "prompt_extend", "negative_prompt"):
            if key in request.extras:
                parameters[key] = request.extras[key]
        return parameters

    async def submit(
        self, request: ImageRequest, ctx: ProviderContext
    ) -> UpstreamJob | ImageResult:
        if is_edit_model(ctx.upstream_model):
            if request.operation not in ("edit", "variation") or not request.images:
                raise InvalidRequest(
                    f"{ctx.upstream_model} edits an input image", code="unsupported_operation"
                )
            return await self._edit(request, ctx)
        if request.operation != "generate":
            raise InvalidRequest(
                f"{ctx.upstream_model} cannot {request.operation.replace('_', ' ')}",
                code="unsupported_operation",
            )
        parameters = self._parameters(request, ctx)
        negative = parameters.pop("negative_prompt", None)
        parameters.update(size=self.size(request, ctx), n=request.n)
        payload: dict[str, Any] = {
            "model": ctx.upstream_model,
            "input": {"prompt": request.prompt},
            "parameters": parameters,
        }
        if negative:
            payload["input"]["negative_prompt"] = negative
        headers = {
            **self._headers(ctx),
            "content-type": "application/json",
            "x-dashscope-async": "enable",
        }
        url = join(self._base(ctx), "api/v1/services/aigc/text2image/image-synthesis")
        answer = await send(
            ctx, "POST", url, provider=self.name, headers=headers, content=json_body(payload),
            max_bytes=1 << 20,
        )  # fmt: skip
        if not answer.ok:
            raise self._error(answer, ctx)
        output = parse(_Answer, answer.body, self.name).output
        if not output.task_id:
            raise UpstreamError("dashscope accepted no task", code="upstream_bad_response")
        return UpstreamJob(output.task_id, poll_after=self._options(ctx).poll_interval)

    async def _edit(self, request: ImageRequest, ctx: ProviderContext) -> ImageResult:
        image = request.images[0]
        encoded = pybase64.b64encode(image.data).decode("ascii")
        parameters = self._parameters(request, ctx)
        payload = {
            "model": ctx.upstream_model,
            "input": {
                "messages": [
                    {
                        "role": "user",
                        "content": [
                            {"image": f"data:{image.mime_type};base64,{encoded}"},
                            {"text": request.prompt},
                        ],
                    }
                ]
            },
            "parameters": parameters,
        }
        url = join(self._base(ctx), "api/v1/services/aigc/multimodal-generation/generation")
        answer = await send(
            ctx, "POST", url, provider=self.name,
            headers={**self._headers(ctx), "content-type": "application/json"},
            content=json_body(payload), max_bytes=1 << 20,
        )  # fmt: skip
        if not answer.ok:
            raise self._error(answer, ctx)
        output = parse(_Answer, answer.body, self.name).output
        urls = [
            part["image"]
            for choice in output.choices
            for part in choice.get("message", {}).get("content", [])
            if isinstance(part, dict) and isinstance(part.get("image"), str)
        ]
        if not urls:
            raise no_image(self.name)
        return ImageResult(images=[upstream_image(await self._fetch(ctx, url)) for url in urls])

    async def _fetch(self, ctx: ProviderContext, url: str) -> bytes:
        if ctx.fetch is None:
            raise UpstreamError("no result downloader", code="upstream_no_image")
        return await ctx.fetch(url)

    async def poll(self, job: UpstreamJob, ctx: ProviderContext) -> JobStatus:
        interval = self._options(ctx).poll_interval
        answer = await send(
            ctx, "GET", join(self._base(ctx), f"api/v1/tasks/{job.id}"), provider=self.name,
            headers=self._headers(ctx), max_bytes=1 << 20,
        )  # fmt: skip
        if not answer.ok:
            raise self._error(answer, ctx)
        output = parse(_Answer, answer.body, self.name).output
        status = output.task_status or "UNKNOWN"
        if status == "SUCCEEDED":
            urls = [r["url"] for r in output.results if isinstance(r.get("url"), str)]
            if not urls:
                refused = [r.get("code") for r in output.results if r.get("code") in _SAFETY]
                if refused:
                    raise ContentPolicyViolation(
                        "dashscope withheld the images", stage="output", reason=str(refused[0])
                    )
                raise no_image(self.name)
            images = [upstream_image(await self._fetch(ctx, url)) for url in urls]
            return JobStatus(result=ImageResult(images=images))
        if status in _DONE_BADLY:
            if output.code in _SAFETY:
                raise ContentPolicyViolation(
                    f"dashscope: {output.message or output.code}",
                    stage="output",
                    reason=output.code,
                )
            detail = redact(f"{output.code or status}: {output.message or ''}", ctx.credentials)
            raise UpstreamError(f"dashscope task {detail}", code="upstream_task_failed")
        return JobStatus(progress=50 if status == "RUNNING" else None, poll_after=interval)

    async def cancel(self, job: UpstreamJob, ctx: ProviderContext) -> None:
        """``POST /api/v1/tasks/{id}/cancel`` (only a PENDING task can be cancelled)."""
        await send(
            ctx, "POST", join(self._base(ctx), f"api/v1/tasks/{job.id}/cancel"),
            provider=self.name, headers=self._headers(ctx), max_bytes=1 << 16,
        )  # fmt: skip

    async def check(self, ctx: ProviderContext) -> str:
        """``GET /api/v1/tasks?page_size=1``: lists the account's tasks (free)."""
        answer = await send(
            ctx, "GET", join(self._base(ctx), "api/v1/tasks"), provider=self.name,
            headers=self._headers(ctx), params={"page_no": "1", "page_size": "1"},
            max_bytes=1 << 20,
        )  # fmt: skip
        if not answer.ok:
            raise self._error(answer, ctx)
        return "key accepted"

    def _error(self, answer: Answer, ctx: ProviderContext) -> ImagegateError:
        code, message = _envelope(answer)
        if code in _SAFETY:
            return ContentPolicyViolation(
                f"dashscope: {redact(message, ctx.credentials)}", stage="prompt", reason=code
            )
        if code in _QUOTA:
            return UpstreamRejected(
                f"dashscope: {redact(message, ctx.credentials)}", code="upstream_quota_exhausted"
            )
        return answer_error(
            answer,
            f"{code}: {message}" if code else message,
            provider=self.name,
            credentials=ctx.credentials,
        )


class _Envelope(BaseModel):
    model_config = ConfigDict(extra="ignore")

    code: str | None = None
    message: str | None = None


def _envelope(answer: Answer) -> tuple[str, str]:
    try:
        body = _Envelope.model_validate_json(answer.body)
    except ValidationError:
        return "", answer.text()[:200]
    return body.code or "", body.message or ""
