"""Replicate predictions as an upstream.

``POST {base}/v1/models/{owner}/{name}/predictions`` (or ``POST /v1/predictions`` with
``version`` for a pinned ``owner/name:version``), body ``{"input": {…}}``, ``Authorization:
Bearer``, and ``Prefer: wait=N`` so that most predictions answer in the same call. Otherwise
the prediction is polled with ``GET urls.get`` until ``succeeded``/``failed``/``canceled``, and
cancelled with ``POST urls.cancel`` when nobody waits any more. ``output`` (a URL or a list of
URLs, on replicate.delivery, valid for an hour) is downloaded at once.
``REPLICATE_API_TOKEN`` (credential ``api_key`` or ``api_token``); a deployment's
``base_url_env`` (``REPLICATE_BASE_URL`` by convention) redirects it.

Input: ``prompt``, ``aspect_ratio`` (nearest of the model's list), ``output_format``
(``png``/``jpg``/``webp``), ``output_quality`` from ``output_compression``, ``seed``, the first
input image as ``options.image_key`` (default ``input_image``) as a data URI, and
``num_outputs`` when ``options.max_n`` > 1. ``options.input`` adds fixed input fields.
"""

from __future__ import annotations

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
)
from imagegate.providers._common import nearest_aspect_ratio, same_site
from imagegate.providers._http import Answer, join, json_body, parse, send
from imagegate.providers.errors import parse_duration, redact, retry_after, status_error
from imagegate.providers.output import upstream_image

__all__ = ["ReplicateOptions", "ReplicateProvider"]

REPLICATE_BASE_URL: Final = "https://api.replicate.com"
FLUX_RATIOS: Final = [
    "1:1", "16:9", "21:9", "3:2", "2:3", "4:5", "5:4", "3:4", "4:3", "9:16", "9:21",
]  # fmt: skip
_FORMATS: Final = {"png": "png", "jpeg": "jpg", "webp": "webp"}


class ReplicateOptions(BaseModel):
    """A Replicate deployment's ``options`` table."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    wait: int = Field(default=60, ge=1, le=60)
    max_n: int = Field(default=1, ge=1, le=10)
    image_key: str = "input_image"
    rename: dict[str, str] = {"steps": "num_inference_steps"}
    """Model extras → the model's own input names."""
    aspect_ratios: list[str] = FLUX_RATIOS
    input: dict[str, Any] = {}
    poll_interval: float = Field(default=1.0, gt=0)


class _Urls(BaseModel):
    model_config = ConfigDict(extra="ignore")

    get: str | None = None
    cancel: str | None = None


class Prediction(BaseModel):
    """A prediction as Replicate returns it (only the fields the adapter reads)."""

    model_config = ConfigDict(extra="ignore")

    id: str = Field(min_length=1)
    status: str
    output: str | list[str] | None = None
    error: str | None = None
    urls: _Urls = _Urls()


class _Problem(BaseModel):
    model_config = ConfigDict(extra="ignore")

    detail: str | None = None
    title: str | None = None


class ReplicateProvider:
    """``replicate``: predictions with ``Prefer: wait``, polling and cancel."""

    name = "replicate"

    def has_credentials(self, credentials: Mapping[str, str]) -> bool:
        return bool(_token(credentials))

    def _options(self, ctx: ProviderContext) -> ReplicateOptions:
        return ctx.options_as(ReplicateOptions, self.name)

    def images_per_call(self, request: ImageRequest, ctx: ProviderContext) -> int:
        return self._options(ctx).max_n

    def dropped_params(self, request: ImageRequest, ctx: ProviderContext) -> list[str]:
        set_here = {"moderation": request.moderation, "style": request.style, "mask": request.mask}
        return sorted(name for name, value in set_here.items() if value is not None)

    def _base(self, ctx: ProviderContext) -> str:
        return ctx.base_url or REPLICATE_BASE_URL

    def _headers(self, ctx: ProviderContext) -> dict[str, str]:
        return {"authorization": f"Bearer {_token(ctx.credentials)}"}

    def input(self, request: ImageRequest, ctx: ProviderContext) -> dict[str, Any]:
        """The prediction's ``input`` (see the module docstring)."""
        options = self._options(ctx)
        data: dict[str, Any] = {
            **options.input,
            "prompt": request.prompt,
            "aspect_ratio": nearest_aspect_ratio(
                request.width, request.height, options.aspect_ratios
            ),
            "output_format": _FORMATS.get(request.output_format, "png"),
        }
        if options.max_n > 1:
            data["num_outputs"] = request.n
        if request.output_compression is not None:
            data["output_quality"] = max(1, 100 - request.output_compression)
        data.update({options.rename.get(k, k): v for k, v in request.extras.items()})
        if request.images:
            image = request.images[0]
            encoded = pybase64.b64encode(image.data).decode("ascii")
            data[options.image_key] = f"data:{image.mime_type};base64,{encoded}"
        return data

    async def submit(
        self, request: ImageRequest, ctx: ProviderContext
    ) -> UpstreamJob | ImageResult:
        if request.operation not in ("generate", "edit"):
            raise InvalidRequest(
                f"the replicate upstream cannot {request.operation.replace('_', ' ')}",
                code="unsupported_operation",
            )
        options = self._options(ctx)
        model, _, version = ctx.upstream_model.partition(":")
        payload: dict[str, Any] = {"input": self.input(request, ctx)}
        if version:
            payload["version"] = version
            path = "v1/predictions"
        else:
            path = f"v1/models/{model}/predictions"
        wait = max(1, min(options.wait, int(ctx.remaining()) - 1))
        headers = {
            **self._headers(ctx),
            "content-type": "application/json",
            "prefer": f"wait={wait}",
        }
        answer = await send(
            ctx, "POST", join(self._base(ctx), path), provider=self.name, headers=headers,
            content=json_body(payload), max_bytes=4 << 20,
        )  # fmt: skip
        if not answer.ok:
            raise self._error(answer, ctx)
        prediction = parse(Prediction, answer.body, self.name)
        finished = await self._finished(prediction, ctx)
        if finished is not None:
            return finished
        base, pid = self._base(ctx), prediction.id
        get, cancel = prediction.urls.get, prediction.urls.cancel
        handles = {
            "get": get if get and same_site(get, base) else join(base, f"v1/predictions/{pid}"),
            "cancel": cancel
            if cancel and same_site(cancel, base)
            else join(base, f"v1/predictions/{pid}/cancel"),
        }
        return UpstreamJob(prediction.id, handles, poll_after=options.poll_interval)

    async def poll(self, job: UpstreamJob, ctx: ProviderContext) -> JobStatus:
        answer = await send(
            ctx, "GET", job.handles["get"], provider=self.name, headers=self._headers(ctx),
            max_bytes=4 << 20,
        )  # fmt: skip
        if not answer.ok:
            raise self._error(answer, ctx)
        prediction = parse(Prediction, answer.body, self.name)
        finished = await self._finished(prediction, ctx)
        if finished is not None:
            return JobStatus(result=finished)
        return JobStatus(poll_after=self._options(ctx).poll_interval)

    async def cancel(self, job: UpstreamJob, ctx: ProviderContext) -> None:
        await send(
            ctx, "POST", job.handles["cancel"], provider=self.name, headers=self._headers(ctx),
            max_bytes=1 << 20,
        )  # fmt: skip

    async def check(self, ctx: ProviderContext) -> str:
        """``GET /v1/account`` (free)."""
        answer = await send(
            ctx, "GET", join(self._base(ctx), "v1/account"), provider=self.name,
            headers=self._headers(ctx), max_bytes=1 << 16,
        )  # fmt: skip
        if not answer.ok:
            raise self._error(answer, ctx)
        return "token accepted"

    async def _finished(self, prediction: Prediction, ctx: ProviderContext) -> ImageResult | None:
        if prediction.status == "succeeded":
            urls = [prediction.output] if isinstance(prediction.output, str) else prediction.output
            if not urls or ctx.fetch is None:
                raise UpstreamError("replicate succeeded without output", code="upstream_no_image")
            images = [upstream_image(await ctx.fetch(url)) for url in urls]
            return ImageResult(images=images)
        if prediction.status == "failed":
            error = redact(prediction.error or "no reason given", ctx.credentials)
            if "nsfw" in error.lower() or "safety" in error.lower():
                raise ContentPolicyViolation(f"replicate: {error}", stage="output", reason="NSFW")
            raise UpstreamError(
                f"replicate prediction failed: {error}", code="upstream_task_failed"
            )
        if prediction.status in ("canceled", "aborted"):
            raise UpstreamError(
                f"replicate prediction was {prediction.status}", code="upstream_task_failed"
            )
        return None

    def _error(self, answer: Answer, ctx: ProviderContext) -> ImagegateError:
        try:
            problem = _Problem.model_validate_json(answer.body)
        except ValidationError:
            problem = _Problem()
        message = problem.detail or problem.title or ""
        hint = retry_after(answer.headers)
        if hint is None and answer.status == 429 and "available in" in message:
            hint = parse_duration(message.rsplit("available in", 1)[1].split()[0])
        return status_error(
            answer.status, message, provider=self.name, credentials=ctx.credentials, hint=hint
        )


def _token(credentials: Mapping[str, str]) -> str:
    """The API token, whichever name the deployment gave it (``api_key`` or ``api_token``)."""
    return credentials.get("api_key") or credentials.get("api_token") or ""
