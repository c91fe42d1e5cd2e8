"""AUTOMATIC1111 / Forge (stable-diffusion-webui ``--api``) as an upstream.

``POST {base}/sdapi/v1/txt2img`` and ``/sdapi/v1/img2img`` answer in one call with
``{"images": [base64 PNG, …], "parameters", "info"}``. Text-to-image sends ``prompt``,
``negative_prompt``, ``width``/``height`` (multiples of 8), ``batch_size`` (= ``n``), ``seed``
(-1 = random), ``steps``, ``cfg_scale``, ``sampler_name``; the deployment's ``model`` (a
checkpoint title, set by the operator) goes in ``override_settings.sd_model_checkpoint``
unless it is ``"*"`` (whatever is loaded). Edits and variations are img2img: ``init_images``
(base64), ``denoising_strength``; a mask is sent as A1111 wants it (white = repaint, black =
keep), converted from the domain's alpha mask. ``GET /sdapi/v1/sd-models`` is the check.

``A1111_BASE_URL`` (the server, which is also the credential that makes the model available)
and optionally ``A1111_AUTH=user:pass`` (``--api-auth``, HTTP Basic). Errors are FastAPI's:
``{"detail": …}`` (401, 422) or ``{"error", "detail", "body", "errors"}`` (500).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any, Final

import pybase64
from pydantic import BaseModel, ConfigDict, Field, RootModel, ValidationError

from imagegate.core.requests import ImageRequest, ImageResult, StreamEvent
from imagegate.core.upstream import ProviderContext
from imagegate.errors import ImagegateError, InvalidRequest, UpstreamRejected
from imagegate.providers._common import set_fields, snap
from imagegate.providers._http import Answer, answer_error, join, json_body, parse, send
from imagegate.providers._masks import black_and_white
from imagegate.providers.errors import redact
from imagegate.providers.output import decode_b64, no_image, upstream_image

__all__ = ["A1111Options", "A1111Provider"]

_OPERATIONS: Final = frozenset({"generate", "edit", "variation"})
_PASSED: Final = ("seed", "steps", "cfg_scale", "sampler_name", "scheduler", "negative_prompt")


class A1111Options(BaseModel):
    """An A1111 deployment's ``options`` table."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    steps: int = Field(default=20, ge=1, le=150)
    cfg_scale: float = Field(default=7.0, ge=1, le=30)
    sampler_name: str | None = None
    max_batch: int = Field(default=4, ge=1, le=16)
    max_side: int = Field(default=2048, ge=64)
    edit_strength: float = Field(default=0.75, ge=0, le=1)
    variation_strength: float = Field(default=0.55, ge=0, le=1)


class _Images(BaseModel):
    model_config = ConfigDict(extra="ignore")

    images: list[str] | None = None


class A1111Provider:
    """``a1111``: txt2img / img2img in one call, PNG base64 back."""

    name = "a1111"

    def has_credentials(self, credentials: Mapping[str, str]) -> bool:
        return bool(credentials.get("base_url"))

    def _options(self, ctx: ProviderContext) -> A1111Options:
        return ctx.options_as(A1111Options, self.name)

    def images_per_call(self, request: ImageRequest, ctx: ProviderContext) -> int:
        return self._options(ctx).max_batch

    def dropped_params(self, request: ImageRequest, ctx: ProviderContext) -> list[str]:
        return set_fields(request, "moderation", "style", "input_fidelity")

    def _base(self, ctx: ProviderContext) -> str:
        base = ctx.base_url or ctx.credentials.get("base_url")
        if not base:
            raise UpstreamRejected("no A1111_BASE_URL is set", code="upstream_misconfigured")
        return base

    def _headers(self, ctx: ProviderContext) -> dict[str, str]:
        headers = {"accept": "application/json"}
        auth = ctx.credentials.get("auth")
        if auth:
            token = pybase64.b64encode(auth.encode()).decode("ascii")
            headers["authorization"] = f"Basic {token}"
        return headers

    def body(self, request: ImageRequest, ctx: ProviderContext) -> dict[str, Any]:
        """The txt2img or img2img body for ``request`` (see the module docstring)."""
        options = self._options(ctx)
        body: dict[str, Any] = {
            "prompt": request.prompt,
            "width": snap(request.width, 8, 64, options.max_side),
            "height": snap(request.height, 8, 64, options.max_side),
            "batch_size": request.n,
            "n_iter": 1,
            "seed": -1,
            "steps": options.steps,
            "cfg_scale": options.cfg_scale,
        }
        if options.sampler_name:
            body["sampler_name"] = options.sampler_name
        body.update({k: v for k, v in request.extras.items() if k in _PASSED})
        if ctx.upstream_model and ctx.upstream_model != "*":
            body["override_settings"] = {"sd_model_checkpoint": ctx.upstream_model}
            body["override_settings_restore_afterwards"] = True
        if request.operation != "generate":
            image = request.images[0]
            body["init_images"] = [pybase64.b64encode(image.data).decode("ascii")]
            default = (
                options.variation_strength
                if request.operation == "variation"
                else options.edit_strength
            )
            body["denoising_strength"] = (
                request.strength if request.strength is not None else default
            )
            if request.mask is not None:
                mask = black_and_white(request.mask, change="white")
                body["mask"] = pybase64.b64encode(mask).decode("ascii")
                body["inpainting_mask_invert"] = 0
                body["inpainting_fill"] = 1
                body["mask_blur"] = 4
        return body

    async def generate(self, request: ImageRequest, ctx: ProviderContext) -> ImageResult:
        if request.operation not in _OPERATIONS or (
            request.operation != "generate" and not request.images
        ):
            raise InvalidRequest(
                f"the a1111 upstream cannot {request.operation.replace('_', ' ')}",
                code="unsupported_operation",
            )
        path = "sdapi/v1/txt2img" if request.operation == "generate" else "sdapi/v1/img2img"
        headers = {**self._headers(ctx), "content-type": "application/json"}
        answer = await send(
            ctx, "POST", join(self._base(ctx), path), provider=self.name, headers=headers,
            content=json_body(self.body(request, ctx)),
        )  # fmt: skip
        if not answer.ok:
            raise self._error(answer, ctx)
        encoded = (parse(_Images, answer.body, self.name).images or [])[: request.n]
        if not encoded:
            raise no_image(self.name)
        images = []
        for text in encoded:
            data = decode_b64(
                text.partition(",")[2] if text.startswith("data:") else text, self.name
            )
            images.append(upstream_image(data))
        return ImageResult(images=images, quality=request.quality)

    async def stream(
        self, request: ImageRequest, ctx: ProviderContext
    ) -> AsyncIterator[StreamEvent]:
        yield await self.generate(request, ctx)

    async def check(self, ctx: ProviderContext) -> str:
        """``GET /sdapi/v1/sd-models``: the checkpoints the server has (free)."""
        answer = await send(
            ctx, "GET", join(self._base(ctx), "sdapi/v1/sd-models"), provider=self.name,
            headers=self._headers(ctx), max_bytes=4 << 20,
        )  # fmt: skip
        if not answer.ok:
            raise self._error(answer, ctx)
        models = parse(_Checkpoints, answer.body, self.name).root
        titles = {m.title for m in models} | {m.model_name for m in models}
        wanted = ctx.upstream_model
        if wanted and wanted != "*" and wanted not in titles:
            raise UpstreamRejected(
                f"a1111 has no checkpoint {wanted!r} ({len(models)} installed)",
                code="upstream_not_found",
            )
        return f"{len(models)} checkpoints"

    def _error(self, answer: Answer, ctx: ProviderContext) -> ImagegateError:
        return answer_error(
            answer,
            redact(_detail(answer), ctx.credentials),
            provider=self.name,
            credentials=ctx.credentials,
        )


class _Checkpoint(BaseModel):
    model_config = ConfigDict(extra="ignore")

    title: str
    model_name: str = ""


class _Checkpoints(RootModel[list[_Checkpoint]]):
    pass


class _Detail(BaseModel):
    model_config = ConfigDict(extra="ignore")

    detail: str | list[dict[str, Any]] | None = None
    error: str | None = None
    errors: str | None = None


def _detail(answer: Answer) -> str:
    try:
        body = _Detail.model_validate_json(answer.body)
    except ValidationError:
        return answer.text()[:200]
    if isinstance(body.detail, list):
        return "; ".join(str(item.get("msg", "")) for item in body.detail[:3])
    return " ".join(part for part in (body.error, body.detail, body.errors) if part)
