"""Stability AI's v2beta Stable Image API as a task upstream.

Every call is ``multipart/form-data`` with ``Authorization: Bearer STABILITY_API_KEY`` and
``Accept: image/*`` (the image bytes, with ``finish-reason`` and ``seed`` headers) — or, for the
asynchronous tools, a JSON ``{"id"}`` collected later with ``GET /v2beta/results/{id}``
(``202 {"id", "status": "in-progress"}`` while running, ``200`` with the image when done,
``404`` once expired after 24 hours). Operations and endpoints:

* generate: ``/v2beta/stable-image/generate/{ultra,core,sd3}`` (``prompt``, ``aspect_ratio``
  from the requested size, ``output_format``, ``seed``, ``negative_prompt``, ``style_preset``;
  sd3 takes ``model`` = ``sd3.5-large`` …); an edit without a mask sends the first image with
  ``strength`` (sd3: ``mode=image-to-image``).
* edit with a mask: ``/edit/inpaint``; erase: ``/edit/erase``; outpaint: ``/edit/outpaint``
  (``left``/``right``/``up``/``down`` in pixels); ``search_prompt`` given: ``/edit/search-and-
  replace``; remove background: ``/edit/remove-background``.
* upscale: ``/upscale/fast`` (4×, synchronous); a deployment with
  ``options.creative_upscale`` uses ``/upscale/creative`` (asynchronous, ``creativity`` from
  ``strength``; billed far higher upstream, so it is a model of its own in the catalogue).

Masks: white marks the area to change (:func:`~.masks.white_marks_edit`). Errors:
``{"id", "name", "errors": [...]}``; a 403 named ``content_moderation`` and a
``finish-reason: CONTENT_FILTERED`` answer are safety outcomes. One image per call (the router
fans ``n`` out). ``STABILITY_BASE_URL`` redirects the deployment.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping, Sequence
from typing import Final

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from imagegate.core.requests import ImageRequest, ImageResult
from imagegate.core.upstream import JobStatus, ProviderContext, UpstreamJob
from imagegate.errors import ContentPolicyViolation, ImagegateError, InvalidRequest, UpstreamError
from imagegate.providers._common import nearest_aspect_ratio
from imagegate.providers._http import Answer, answer_error, join, parse, send
from imagegate.providers.errors import bad_response, redact
from imagegate.providers.masks import white_marks_edit
from imagegate.providers.output import upstream_image

__all__ = ["STABILITY_BASE_URL", "StabilityProvider"]

STABILITY_BASE_URL: Final = "https://api.stability.ai"
ASPECT_RATIOS: Final = ("21:9", "16:9", "3:2", "5:4", "1:1", "4:5", "2:3", "9:16", "9:21")
_EXTRAS: Final = ("seed", "negative_prompt", "style_preset")
Part = tuple[str, str | tuple[str, bytes, str]]


class StabilityOptions(BaseModel):
    """A Stability deployment's ``options`` table."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    creative_upscale: bool = False
    poll_interval: float = Field(default=2.0, gt=0)


class _Submitted(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: str


class _ErrorBody(BaseModel):
    model_config = ConfigDict(extra="ignore")

    name: str | None = None
    errors: list[str] = []


class StabilityProvider:
    """``stability``: one multipart call per image, or a result id for the async tools."""

    name = "stability"

    def has_credentials(self, credentials: Mapping[str, str]) -> bool:
        return bool(credentials.get("api_key"))

    def images_per_call(self, request: ImageRequest, ctx: ProviderContext) -> int:
        return 1

    def dropped_params(self, request: ImageRequest, ctx: ProviderContext) -> list[str]:
        set_here = {
            "style": request.style,
            "moderation": request.moderation,
            "input_fidelity": request.input_fidelity,
        }
        dropped = [name for name, value in set_here.items() if value is not None]
        if request.operation == "generate" and len(request.images) > 1:
            dropped.append("image")
        return sorted(dropped)

    def call(self, request: ImageRequest, ctx: ProviderContext) -> tuple[str, list[Part]]:
        """The endpoint path and the form parts for ``request`` (see the module docstring)."""
        operation = request.operation
        if operation != "generate" and not request.images:
            raise InvalidRequest(f"{operation} needs an input image", param="image")
        builder: Callable[[_Form, ImageRequest, str], str]
        if operation == "edit" and request.mask is not None:
            builder = _inpaint
        elif operation == "edit" and "search_prompt" in request.extras:
            builder = _search_and_replace
        elif operation in ("generate", "edit", "variation"):
            if (
                operation != "generate"
                and _generate_path(ctx.upstream_model)[1] is None
                and ("ultra" not in ctx.upstream_model)
            ):
                raise InvalidRequest(
                    "this Stability model takes no input image: give a mask (inpaint) or a "
                    "search_prompt (search and replace)",
                    param="mask",
                )
            builder = _generate
        elif operation in _BUILDERS:
            builder = _BUILDERS[operation]
        else:
            raise InvalidRequest(
                f"the stability upstream cannot {operation.replace('_', ' ')}",
                code="unsupported_operation",
            )
        form = _Form(request, ctx.options_as(StabilityOptions, self.name))
        path = builder(form, request, ctx.upstream_model)
        for key in _EXTRAS:
            if key in request.extras and (key != "style_preset" or path.endswith("/core")):
                form.add(key, request.extras[key])
        fmt = request.output_format if request.output_format in ("jpeg", "webp") else "png"
        if operation == "remove_background" and fmt == "jpeg":
            fmt = "png"
        form.add("output_format", fmt)
        return path, form.parts

    async def submit(
        self, request: ImageRequest, ctx: ProviderContext
    ) -> UpstreamJob | ImageResult:
        path, parts = self.call(request, ctx)
        content, content_type = _multipart(parts)
        headers = {**self._headers(ctx), "accept": "image/*", "content-type": content_type}
        answer = await send(
            ctx, "POST", join(self._base(ctx), path), provider=self.name, headers=headers,
            content=content,
        )  # fmt: skip
        if not answer.ok:
            raise self._error(answer, ctx)
        if answer.headers.get("content-type", "").startswith("application/json"):
            submitted = parse(_Submitted, answer.body, self.name)
            interval = ctx.options_as(StabilityOptions, self.name).poll_interval
            return UpstreamJob(submitted.id, {}, poll_after=interval)
        return self._result(answer)

    async def poll(self, job: UpstreamJob, ctx: ProviderContext) -> JobStatus:
        headers = {**self._headers(ctx), "accept": "image/*"}
        answer = await send(
            ctx, "GET", join(self._base(ctx), f"v2beta/results/{job.id}"), provider=self.name,
            headers=headers,
        )  # fmt: skip
        if answer.status == 202:
            return JobStatus(poll_after=ctx.options_as(StabilityOptions, self.name).poll_interval)
        if answer.status == 404:
            raise UpstreamError(
                "stability no longer has this result (expired or unknown)",
                code="upstream_task_failed",
            )
        if not answer.ok:
            raise self._error(answer, ctx)
        return JobStatus(result=self._result(answer))

    async def cancel(self, job: UpstreamJob, ctx: ProviderContext) -> None:
        """Stability has no cancel call; the result simply expires after 24 hours."""

    async def check(self, ctx: ProviderContext) -> str:
        """``GET /v1/user/balance``: the account's credits (free)."""
        answer = await send(
            ctx, "GET", join(self._base(ctx), "v1/user/balance"), provider=self.name,
            headers={**self._headers(ctx), "accept": "application/json"}, max_bytes=1 << 16,
        )  # fmt: skip
        if not answer.ok:
            raise self._error(answer, ctx)
        return "key accepted"

    def _base(self, ctx: ProviderContext) -> str:
        return ctx.base_url or STABILITY_BASE_URL

    def _headers(self, ctx: ProviderContext) -> dict[str, str]:
        return {"authorization": f"Bearer {ctx.credentials.get('api_key', '')}"}

    def _result(self, answer: Answer) -> ImageResult:
        reason = answer.headers.get("finish-reason", "SUCCESS").upper()
        if reason == "CONTENT_FILTERED":
            raise ContentPolicyViolation(
                "stability: the image was filtered by the content policy",
                stage="output", reason=reason,
            )  # fmt: skip
        if reason == "ERROR" or not answer.headers.get("content-type", "").startswith("image/"):
            raise bad_response(self.name, "an answer that is not an image")
        return ImageResult(images=[upstream_image(answer.body)])

    def _error(self, answer: Answer, ctx: ProviderContext) -> ImagegateError:
        try:
            body: _ErrorBody | None = _ErrorBody.model_validate_json(answer.body)
        except ValidationError:
            body = None
        said = redact("; ".join(body.errors[:3]) if body else answer.text()[:200], ctx.credentials)
        if body is not None and body.name == "content_moderation":
            return ContentPolicyViolation(
                f"stability: {said or 'flagged by content moderation'}",
                stage="prompt", reason="content_moderation",
            )  # fmt: skip
        return answer_error(
            answer,
            said,
            provider=self.name,
            credentials=ctx.credentials,
            code=body.name if body else None,
        )


class _Form:
    def __init__(self, request: ImageRequest, options: StabilityOptions) -> None:
        self.parts: list[Part] = []
        self.request = request
        self.options = options

    def add(self, name: str, value: object) -> None:
        if value is not None:
            self.parts.append((name, str(value)))

    def add_image(self) -> None:
        image = self.request.images[0]
        self.parts.append(("image", (f"image.{image.format}", image.data, image.mime_type)))

    def add_mask(self) -> None:
        if self.request.mask is not None:
            mask = white_marks_edit(self.request.mask)
            self.parts.append(("mask", ("mask.png", mask, "image/png")))


def _generate(form: _Form, request: ImageRequest, model: str) -> str:
    path, sd3_model = _generate_path(model)
    form.add("prompt", request.prompt)
    form.add("model", sd3_model)
    if request.operation != "generate":
        form.add_image()
        form.add("strength", request.strength if request.strength is not None else 0.7)
        if sd3_model is not None:
            form.add("mode", "image-to-image")
    else:
        form.add("aspect_ratio", nearest_aspect_ratio(request.width, request.height, ASPECT_RATIOS))
    return path


def _inpaint(form: _Form, request: ImageRequest, model: str) -> str:
    form.add_image()
    form.add_mask()
    form.add("prompt", request.prompt)
    return "v2beta/stable-image/edit/inpaint"


def _search_and_replace(form: _Form, request: ImageRequest, model: str) -> str:
    form.add_image()
    form.add("prompt", request.prompt)
    form.add("search_prompt", request.extras["search_prompt"])
    return "v2beta/stable-image/edit/search-and-replace"


def _erase(form: _Form, request: ImageRequest, model: str) -> str:
    form.add_image()
    form.add_mask()
    return "v2beta/stable-image/edit/erase"


def _outpaint(form: _Form, request: ImageRequest, model: str) -> str:
    form.add_image()
    left, top, right, bottom = request.padding or (0, 0, 0, 0)
    for name, value in (("left", left), ("right", right), ("up", top), ("down", bottom)):
        form.add(name, value)
    if request.prompt:
        form.add("prompt", request.prompt)
    return "v2beta/stable-image/edit/outpaint"


def _remove_background(form: _Form, request: ImageRequest, model: str) -> str:
    form.add_image()
    return "v2beta/stable-image/edit/remove-background"


def _upscale(form: _Form, request: ImageRequest, model: str) -> str:
    form.add_image()
    if not form.options.creative_upscale:
        return "v2beta/stable-image/upscale/fast"
    form.add("prompt", request.prompt or "the same picture, sharper")
    form.add("creativity", round(min(max(request.strength or 0.3, 0.1), 0.5), 2))
    return "v2beta/stable-image/upscale/creative"


_BUILDERS: Final[dict[str, Callable[[_Form, ImageRequest, str], str]]] = {
    "erase": _erase,
    "outpaint": _outpaint,
    "remove_background": _remove_background,
    "upscale": _upscale,
}


def _generate_path(model: str) -> tuple[str, str | None]:
    if model.startswith("sd3"):
        return "v2beta/stable-image/generate/sd3", model
    if "ultra" in model:
        return "v2beta/stable-image/generate/ultra", None
    return "v2beta/stable-image/generate/core", None


def _multipart(parts: Sequence[Part]) -> tuple[bytes, str]:
    """A ``multipart/form-data`` body: Stability wants one even without a file."""
    boundary = secrets.token_hex(16)
    chunks: list[bytes] = []
    for name, value in parts:
        head = f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"'
        if isinstance(value, tuple):
            filename, data, content_type = value
            head += f'; filename="{filename}"\r\nContent-Type: {content_type}'
            chunks += [head.encode(), b"\r\n\r\n", data, b"\r\n"]
        else:
            chunks += [head.encode(), b"\r\n\r\n", value.encode(), b"\r\n"]
    chunks.append(f"--{boundary}--\r\n".encode())
    return b"".join(chunks), f"multipart/form-data; boundary={boundary}"
