"""fal's queue API as an upstream.

Submit ``POST {queue}/{model}`` (``Authorization: Key <FAL_KEY>``) → ``{"request_id",
"status_url", "response_url", "cancel_url"}``; poll ``GET status_url`` until ``COMPLETED``
(``IN_QUEUE``/``IN_PROGRESS`` before); read ``GET response_url`` → the model's output
(``{"images": [{"url", "width", "height", "content_type"}], "has_nsfw_concepts": […]}``);
cancel with ``PUT cancel_url``. Status and result live under the model's *app* (the first two
path segments: ``fal-ai/flux/dev`` → ``fal-ai/flux``), which the returned URLs already say.
Image URLs (fal.media) are downloaded at once. ``FAL_KEY``; ``FAL_QUEUE_URL`` redirects.

Input: ``prompt``, ``image_size`` as ``{"width", "height"}``, ``num_images`` (≤ ``max_n``,
default 4), ``output_format`` (``jpeg``/``png``), ``seed``, input images as
``options.image_key`` (``image_url``) or ``image_urls`` data URIs, ``options.input`` fixed
fields. Images flagged in ``has_nsfw_concepts`` are dropped; when all are, it is a safety
outcome.
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
from imagegate.providers._common import same_site, set_fields
from imagegate.providers._http import Answer, answer_error, join, json_body, parse, send
from imagegate.providers.errors import redact
from imagegate.providers.output import no_image, upstream_image

__all__ = ["FalOptions", "FalProvider"]

FAL_QUEUE_URL: Final = "https://queue.fal.run"


class FalOptions(BaseModel):
    """A fal deployment's ``options`` table."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_n: int = Field(default=4, ge=1, le=10)
    image_key: str = "image_url"
    many_images_key: str | None = "image_urls"
    size_as: str = "image_size"
    input: dict[str, Any] = {}
    poll_interval: float = Field(default=0.5, gt=0)


class _Queued(BaseModel):
    model_config = ConfigDict(extra="ignore")

    request_id: str = Field(min_length=1)
    status_url: str | None = None
    response_url: str | None = None
    cancel_url: str | None = None


class _Status(BaseModel):
    model_config = ConfigDict(extra="ignore")

    status: str
    queue_position: int | None = None
    error: str | None = None
    error_type: str | None = None


class _FalImage(BaseModel):
    model_config = ConfigDict(extra="ignore")

    url: str
    width: int | None = None
    height: int | None = None


class _Output(BaseModel):
    model_config = ConfigDict(extra="ignore")

    images: list[_FalImage] = []
    image: _FalImage | None = None
    has_nsfw_concepts: list[bool] = []


class _FalError(BaseModel):
    model_config = ConfigDict(extra="ignore")

    detail: str | list[dict[str, Any]] | None = None


class FalProvider:
    """``fal``: the queue API (submit, status, result, cancel)."""

    name = "fal"

    def has_credentials(self, credentials: Mapping[str, str]) -> bool:
        return bool(credentials.get("api_key"))

    def _options(self, ctx: ProviderContext) -> FalOptions:
        return ctx.options_as(FalOptions, self.name)

    def images_per_call(self, request: ImageRequest, ctx: ProviderContext) -> int:
        return self._options(ctx).max_n

    def dropped_params(self, request: ImageRequest, ctx: ProviderContext) -> list[str]:
        return set_fields(request, "moderation", "style", "mask")

    def _base(self, ctx: ProviderContext) -> str:
        return ctx.base_url or FAL_QUEUE_URL

    def _headers(self, ctx: ProviderContext) -> dict[str, str]:
        return {"authorization": f"Key {ctx.credentials.get('api_key', '')}"}

    def _app_url(self, ctx: ProviderContext, request_id: str, tail: str = "") -> str:
        app = "/".join(ctx.upstream_model.split("/")[:2])
        return join(self._base(ctx), f"{app}/requests/{request_id}{tail}")

    def input(self, request: ImageRequest, ctx: ProviderContext) -> dict[str, Any]:
        """The model input (see the module docstring)."""
        options = self._options(ctx)
        data: dict[str, Any] = {
            **options.input,
            "prompt": request.prompt,
            options.size_as: {"width": request.width, "height": request.height},
            "num_images": request.n,
            "output_format": "jpeg" if request.output_format == "jpeg" else "png",
        }
        data.update(request.extras)
        uris = [
            f"data:{image.mime_type};base64,{pybase64.b64encode(image.data).decode('ascii')}"
            for image in request.images
        ]
        if len(uris) == 1 or (uris and options.many_images_key is None):
            data[options.image_key] = uris[0]
        elif uris and options.many_images_key:
            data[options.many_images_key] = uris
        return data

    async def submit(self, request: ImageRequest, ctx: ProviderContext) -> UpstreamJob:
        if request.operation not in ("generate", "edit"):
            raise InvalidRequest(
                f"the fal upstream cannot {request.operation.replace('_', ' ')}",
                code="unsupported_operation",
            )
        headers = {**self._headers(ctx), "content-type": "application/json"}
        answer = await send(
            ctx, "POST", join(self._base(ctx), ctx.upstream_model), provider=self.name,
            headers=headers, content=json_body(self.input(request, ctx)), max_bytes=1 << 20,
        )  # fmt: skip
        if not answer.ok:
            raise self._error(answer, ctx)
        queued = parse(_Queued, answer.body, self.name)
        base, rid = self._base(ctx), queued.request_id
        handles = {
            "status": _own(queued.status_url, base) or self._app_url(ctx, rid, "/status"),
            "response": _own(queued.response_url, base) or self._app_url(ctx, rid),
            "cancel": _own(queued.cancel_url, base) or self._app_url(ctx, rid, "/cancel"),
        }
        return UpstreamJob(rid, handles, poll_after=self._options(ctx).poll_interval)

    async def poll(self, job: UpstreamJob, ctx: ProviderContext) -> JobStatus:
        answer = await self._get(ctx, job.handles["status"])
        status = parse(_Status, answer.body, self.name)
        interval = self._options(ctx).poll_interval
        if status.status != "COMPLETED":
            return JobStatus(poll_after=interval)
        if status.error:
            message = redact(status.error, ctx.credentials)
            raise UpstreamError(f"fal request failed: {message}", code="upstream_task_failed")
        output = parse(_Output, (await self._get(ctx, job.handles["response"])).body, self.name)
        return JobStatus(result=await self._result(output, ctx))

    async def cancel(self, job: UpstreamJob, ctx: ProviderContext) -> None:
        await send(
            ctx, "PUT", job.handles["cancel"], provider=self.name, headers=self._headers(ctx),
            max_bytes=1 << 16,
        )  # fmt: skip

    async def check(self, ctx: ProviderContext) -> str:
        """The status of a request id that does not exist: 404 means the key was accepted."""
        url = self._app_url(ctx, "00000000-0000-0000-0000-000000000000", "/status")
        answer = await send(
            ctx, "GET", url, provider=self.name, headers=self._headers(ctx), max_bytes=1 << 16
        )
        if answer.status in (401, 403) or answer.status >= 500:
            raise self._error(answer, ctx)
        return "key accepted"

    async def _get(self, ctx: ProviderContext, url: str) -> Answer:
        answer = await send(
            ctx, "GET", url, provider=self.name, headers=self._headers(ctx), max_bytes=4 << 20
        )
        if not answer.ok:
            raise self._error(answer, ctx)
        return answer

    async def _result(self, output: _Output, ctx: ProviderContext) -> ImageResult:
        items = output.images or ([output.image] if output.image else [])
        flags = output.has_nsfw_concepts
        kept = [item for i, item in enumerate(items) if not (i < len(flags) and flags[i])]
        if items and not kept:
            raise ContentPolicyViolation(
                "fal flagged every image as unsafe", stage="output", reason="NSFW_CONCEPTS"
            )
        if not kept or ctx.fetch is None:
            raise no_image(self.name)
        return ImageResult(images=[upstream_image(await ctx.fetch(item.url)) for item in kept])

    def _error(self, answer: Answer, ctx: ProviderContext) -> ImagegateError:
        try:
            detail = _FalError.model_validate_json(answer.body).detail
        except ValidationError:
            detail = None
        if isinstance(detail, list):
            message = "; ".join(str(item.get("msg", "")) for item in detail[:3])
        else:
            message = detail or ""
        return answer_error(
            answer,
            message,
            provider=self.name,
            credentials=ctx.credentials,
        )


def _own(url: str | None, base: str) -> str | None:
    return url if same_site(url, base) else None
