"""Bria's v2 API as a task upstream.

Every route takes JSON with the token in an ``api_token`` header and answers ``202
{"request_id", "status_url"}`` (asynchronous by default; ``sync: true`` would hold the
connection). ``GET {base}/v2/status/{request_id}`` answers ``{"request_id", "status",
"result": {"image_url", "seed", …}, "error": {"code", "message", "details"}}`` with ``status``
``IN_PROGRESS`` → ``COMPLETED`` | ``ERROR`` | ``UNKNOWN``; the result URL is downloaded at once.
The ``status_url`` is followed only when it stays on the deployment's site (our token goes with
it); otherwise the documented status path is used. ``BRIA_API_TOKEN``; ``BRIA_BASE_URL``
(default ``https://engine.prod.bria-api.com``) redirects the deployment.

Operations and routes (``image``/``mask`` as base64 strings; masks white = edit):

* generate: ``/v2/image/generate`` (``prompt``, ``aspect_ratio`` nearest the requested size,
  ``seed``, ``negative_prompt``); one image per task (the router fans ``n`` out).
* edit with a mask: ``/v2/image/edit/gen_fill``; without one: ``/v2/image/edit``
  (``images``, ``instruction``); erase: ``/edit/erase``; outpaint: ``/edit/expand``
  (``canvas_size``, ``original_image_size``, ``original_image_location`` from the padding);
  enhance: ``/edit/enhance``; upscale: ``/edit/increase_resolution`` (``scale`` 2 or 4);
  remove / replace background: ``/edit/remove_background`` / ``/edit/replace_background``.

Vector graphics (``output_format="svg"``) have no v2 route: they go to the v1 route
``/v1/text-to-vector/{options.vector_model}`` (default ``base/2.3``) with ``sync: true`` and
``num_results`` = ``n`` (up to 4), which answers ``{"result": [{"urls": [svg], "seed",
"uuid"}]}`` at once.

Errors: the same ``error`` object, on a non-2xx submit or as an ``ERROR`` status; a 422 that
names content moderation (Bria's opt-in ``content_moderation``) is a safety outcome.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

import pybase64
from pydantic import BaseModel, ConfigDict, ValidationError

from imagegate.core.requests import GeneratedImage, ImageRequest, ImageResult
from imagegate.core.upstream import JobStatus, ProviderContext, UpstreamJob
from imagegate.errors import ContentPolicyViolation, ImagegateError, InvalidRequest, UpstreamError
from imagegate.providers._common import nearest_aspect_ratio, same_site, set_fields
from imagegate.providers._http import Answer, answer_error, join, json_body, parse, send
from imagegate.providers.errors import redact
from imagegate.providers.masks import white_marks_edit
from imagegate.providers.output import upstream_image

__all__ = ["BRIA_BASE_URL", "BriaProvider"]

BRIA_BASE_URL: Final = "https://engine.prod.bria-api.com"
_MAX_VECTORS: Final = 4
ASPECT_RATIOS: Final = ("1:1", "2:3", "3:2", "3:4", "4:3", "4:5", "5:4", "9:16", "16:9")
_EDIT_ROUTES: Final = {
    "erase": "v2/image/edit/erase",
    "outpaint": "v2/image/edit/expand",
    "enhance": "v2/image/edit/enhance",
    "upscale": "v2/image/edit/increase_resolution",
    "remove_background": "v2/image/edit/remove_background",
    "replace_background": "v2/image/edit/replace_background",
}


class BriaOptions(BaseModel):
    """A Bria deployment's ``options`` table."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    content_moderation: bool = False
    poll_interval: float = 1.0
    vector_model: str = "base/2.3"
    """The v1 text-to-vector route's ``{tier}/{model_version}``."""


class _Error(BaseModel):
    model_config = ConfigDict(extra="ignore")

    code: int | str | None = None
    message: str | None = None
    details: str | None = None


class _Result(BaseModel):
    model_config = ConfigDict(extra="ignore")

    image_url: str | None = None
    seed: int | None = None


class _Vector(BaseModel):
    model_config = ConfigDict(extra="ignore")

    urls: list[str] = []
    seed: int | None = None


class _VectorAnswer(BaseModel):
    model_config = ConfigDict(extra="ignore")

    result: list[_Vector] = []


class _Status(BaseModel):
    model_config = ConfigDict(extra="ignore")

    request_id: str | None = None
    status: str | None = None
    status_url: str | None = None
    result: _Result | None = None
    error: _Error | None = None


class BriaProvider:
    """``bria``: submit to a v2 route, poll ``/v2/status/{id}``, download ``image_url``."""

    name = "bria"

    def has_credentials(self, credentials: Mapping[str, str]) -> bool:
        return bool(credentials.get("api_token"))

    def _options(self, ctx: ProviderContext) -> BriaOptions:
        return ctx.options_as(BriaOptions, self.name)

    def images_per_call(self, request: ImageRequest, ctx: ProviderContext) -> int:
        return _MAX_VECTORS if _vector(request) else 1

    def dropped_params(self, request: ImageRequest, ctx: ProviderContext) -> list[str]:
        return set_fields(request, "style", "moderation", "input_fidelity")

    def call(self, request: ImageRequest, ctx: ProviderContext) -> tuple[str, dict[str, Any]]:
        """The route and the JSON body for ``request`` (see the module docstring)."""
        operation = request.operation
        body: dict[str, Any] = {}
        if operation == "generate":
            path = "v2/image/generate"
            body["prompt"] = request.prompt
            body["aspect_ratio"] = nearest_aspect_ratio(
                request.width, request.height, ASPECT_RATIOS
            )
            for key in ("seed", "negative_prompt"):
                if key in request.extras:
                    body[key] = request.extras[key]
        elif not request.images:
            raise InvalidRequest(f"{operation} needs an input image", param="image")
        elif operation == "edit" and request.mask is None:
            path = "v2/image/edit"
            body["images"] = [_b64(image.data) for image in request.images]
            body["instruction"] = request.prompt
        elif operation == "edit":
            path = "v2/image/edit/gen_fill"
            body["prompt"] = request.prompt
        elif operation in _EDIT_ROUTES:
            path = _EDIT_ROUTES[operation]
        else:
            raise InvalidRequest(
                f"the bria upstream cannot {operation.replace('_', ' ')}",
                code="unsupported_operation",
            )
        if operation != "generate" and "images" not in body:
            body["image"] = _b64(request.images[0].data)
            if request.mask is not None and operation in ("edit", "erase"):
                body["mask"] = _b64(white_marks_edit(request.mask))
                body["mask_type"] = "manual"
        _action_fields(request, body)
        if self._options(ctx).content_moderation:
            body["content_moderation"] = True
        return path, body

    async def submit(
        self, request: ImageRequest, ctx: ProviderContext
    ) -> UpstreamJob | ImageResult:
        if _vector(request):
            return await self._vectors(request, ctx)
        path, body = self.call(request, ctx)
        headers = {**self._headers(ctx), "content-type": "application/json"}
        answer = await send(
            ctx, "POST", join(self._base(ctx), path), provider=self.name, headers=headers,
            content=json_body(body), max_bytes=1 << 20,
        )  # fmt: skip
        if not answer.ok:
            raise self._error(answer, ctx)
        status = parse(_Status, answer.body, self.name)
        if status.result is not None and status.result.image_url:
            return await self._download(status.result, ctx)
        if not status.request_id:
            raise UpstreamError(
                "bria accepted the task without a request_id", code="upstream_bad_response"
            )
        polling = status.status_url
        if not same_site(polling, self._base(ctx)):
            polling = join(self._base(ctx), f"v2/status/{status.request_id}")
        interval = self._options(ctx).poll_interval
        return UpstreamJob(status.request_id, {"status_url": polling or ""}, poll_after=interval)

    async def _vectors(self, request: ImageRequest, ctx: ProviderContext) -> ImageResult:
        options = self._options(ctx)
        body: dict[str, Any] = {
            "prompt": request.prompt,
            "num_results": min(request.n, _MAX_VECTORS),
            "sync": True,
            "aspect_ratio": nearest_aspect_ratio(request.width, request.height, ASPECT_RATIOS),
        }
        for key in ("seed", "negative_prompt"):
            if key in request.extras:
                body[key] = request.extras[key]
        if options.content_moderation:
            body["content_moderation"] = True
        headers = {**self._headers(ctx), "content-type": "application/json"}
        url = join(self._base(ctx), f"v1/text-to-vector/{options.vector_model}")
        answer = await send(
            ctx, "POST", url, provider=self.name, headers=headers, content=json_body(body),
            max_bytes=1 << 20,
        )  # fmt: skip
        if not answer.ok:
            raise self._error(answer, ctx)
        urls = [url for item in parse(_VectorAnswer, answer.body, self.name).result
                for url in item.urls]  # fmt: skip
        if not urls or ctx.fetch is None:
            raise UpstreamError("bria answered without a vector", code="upstream_no_image")
        images = [await ctx.fetch(url) for url in urls[: request.n]]
        return ImageResult(
            images=[GeneratedImage(data, "svg", request.width, request.height) for data in images]
        )

    async def poll(self, job: UpstreamJob, ctx: ProviderContext) -> JobStatus:
        url = job.handles.get("status_url") or join(self._base(ctx), f"v2/status/{job.id}")
        answer = await send(
            ctx, "GET", url, provider=self.name, headers=self._headers(ctx), max_bytes=1 << 20
        )
        if not answer.ok:
            raise self._error(answer, ctx)
        status = parse(_Status, answer.body, self.name)
        interval = self._options(ctx).poll_interval
        if status.status == "COMPLETED":
            if status.result is None or not status.result.image_url:
                raise UpstreamError("bria completed without an image", code="upstream_no_image")
            return JobStatus(result=await self._download(status.result, ctx))
        if status.status == "ERROR":
            raise self._task_error(status.error, ctx)
        if status.status == "UNKNOWN":
            raise UpstreamError(
                "bria reported an internal error (UNKNOWN)", code="upstream_task_failed"
            )
        return JobStatus(poll_after=interval)

    async def cancel(self, job: UpstreamJob, ctx: ProviderContext) -> None:
        """Bria has no cancel call; an abandoned request simply finishes upstream."""

    async def check(self, ctx: ProviderContext) -> str:
        """``GET /v2/status/{id}`` of an id that does not exist: 404 means the token was
        accepted (a wrong token is a 401/403), and nothing is generated or billed."""
        url = join(self._base(ctx), "v2/status/imagegate-providers-check")
        answer = await send(
            ctx, "GET", url, provider=self.name, headers=self._headers(ctx), max_bytes=1 << 16
        )
        if answer.status != 404 and not answer.ok:
            raise self._error(answer, ctx)
        return "token accepted"

    def _base(self, ctx: ProviderContext) -> str:
        return ctx.base_url or BRIA_BASE_URL

    def _headers(self, ctx: ProviderContext) -> dict[str, str]:
        return {"api_token": ctx.credentials.get("api_token", ""), "accept": "application/json"}

    async def _download(self, result: _Result, ctx: ProviderContext) -> ImageResult:
        if ctx.fetch is None or not result.image_url:
            raise UpstreamError("bria answered without an image", code="upstream_no_image")
        return ImageResult(images=[upstream_image(await ctx.fetch(result.image_url))])

    def _task_error(self, error: _Error | None, ctx: ProviderContext) -> ImagegateError:
        message = redact(_said(error), ctx.credentials)
        code = _status_code(error)
        if _moderated(code, message):
            return ContentPolicyViolation(f"bria: {message}", stage="output", reason="moderation")
        if code in (400, 422):
            return InvalidRequest(f"bria: {message}", code="upstream_invalid_request")
        return UpstreamError(f"bria task failed: {message}", code="upstream_task_failed")

    def _error(self, answer: Answer, ctx: ProviderContext) -> ImagegateError:
        try:
            error = _Status.model_validate_json(answer.body).error
        except ValidationError:
            error = None
        message = redact(_said(error) or answer.text()[:200], ctx.credentials)
        if _moderated(answer.status, message):
            return ContentPolicyViolation(f"bria: {message}", stage="prompt", reason="moderation")
        return answer_error(
            answer,
            message,
            provider=self.name,
            credentials=ctx.credentials,
        )


def _action_fields(request: ImageRequest, body: dict[str, Any]) -> None:
    """The fields only one action takes (expand's frame, the upscale factor, a new background)."""
    operation = request.operation
    if operation == "outpaint":
        source = request.images[0]
        left, top, right, bottom = request.padding or (0, 0, 0, 0)
        body["canvas_size"] = [source.width + left + right, source.height + top + bottom]
        body["original_image_size"] = [source.width, source.height]
        body["original_image_location"] = [left, top]
        if request.prompt:
            body["prompt"] = request.prompt
    elif operation == "upscale":
        body["scale"] = 4 if (request.scale or 2) > 2 else 2
    elif operation == "replace_background":
        body["prompt"] = request.prompt


def _vector(request: ImageRequest) -> bool:
    return request.operation == "generate" and request.output_format == "svg"


def _b64(data: bytes) -> str:
    return pybase64.b64encode(data).decode("ascii")


def _said(error: _Error | None) -> str:
    if error is None:
        return ""
    return "; ".join(part for part in (error.message, error.details) if part)


def _status_code(error: _Error | None) -> int | None:
    code = error.code if error else None
    if isinstance(code, str):
        return int(code) if code.isdigit() else None
    return code


def _moderated(status: int | None, message: str) -> bool:
    return status == 422 and "moderation" in message.lower()
