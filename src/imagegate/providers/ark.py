"""ByteDance Seedream / SeedEdit on Volcengine Ark (BytePlus ModelArk).

``POST {base}/api/v3/images/generations`` with ``Authorization: Bearer ARK_API_KEY``: an
OpenAI-like JSON body with Seedream's own fields. Sent: ``model``, ``prompt``, ``size``
(``"WxH"``, within the model's pixel range; SeedEdit 3.0 only takes ``"adaptive"``: the
input's shape), ``response_format: "b64_json"``, ``watermark``
(``false`` unless the deployment's ``options.watermark`` says otherwise), ``seed`` (Seedream 3
and SeedEdit only), ``image`` (reference images as ``data:image/<fmt>;base64,…``: one string,
or a list of up to 14 for Seedream 4.x), and for ``n`` > 1 on Seedream 4.x the group mode:
``sequential_image_generation: "auto"`` with ``sequential_image_generation_options.max_images``
(input + output images ≤ 15). Answer: ``{"model", "created", "data": [{"b64_json"|"url",
"size"}], "usage": {"generated_images", "output_tokens", "total_tokens"}}``; in group mode an
item may carry ``error`` instead of an image (that one was refused).

Errors: ``{"error": {"code", "message", "param", "type"}}``; the ``*SensitiveContentDetected``
codes (prompt, input image, output image) are safety blocks. ``ARK_BASE_URL`` chooses the
region (``https://ark.cn-beijing.volces.com`` is the default; BytePlus:
``https://ark.ap-southeast.bytepluses.com``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any, Final, Literal

import pybase64
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from imagegate.core.requests import ImageRequest, ImageResult, InputImage, StreamEvent, Usage
from imagegate.core.upstream import ProviderContext
from imagegate.errors import ContentPolicyViolation, ImagegateError, InvalidRequest
from imagegate.providers._http import Answer, answer_error, join, json_body, parse, send
from imagegate.providers.errors import redact, status_error
from imagegate.providers.output import decode_b64, no_image, upstream_image

__all__ = ["ARK_BASE_URL", "ArkOptions", "ArkProvider"]

ARK_BASE_URL: Final = "https://ark.cn-beijing.volces.com"
_MAX_REFERENCES: Final = 14
_MAX_TOTAL_IMAGES: Final = 15
_SAFETY: Final[dict[str, Literal["prompt", "input", "output"]]] = {
    "InputTextSensitiveContentDetected": "prompt",
    "InputImageSensitiveContentDetected": "input",
    "OutputImageSensitiveContentDetected": "output",
    "OutputTextSensitiveContentDetected": "output",
}
_MIME: Final = {"png": "png", "jpeg": "jpeg", "webp": "webp", "gif": "gif"}


class ArkOptions(BaseModel):
    """An Ark deployment's ``options`` table."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    watermark: bool = False
    group: bool | None = None
    """Whether the model takes ``sequential_image_generation`` (read from the name if unset)."""


class _Error(BaseModel):
    model_config = ConfigDict(extra="ignore")

    code: str | None = None
    message: str | None = None
    param: str | None = None


class _Envelope(BaseModel):
    model_config = ConfigDict(extra="ignore")

    error: _Error | None = None


class _Item(BaseModel):
    model_config = ConfigDict(extra="ignore")

    b64_json: str | None = None
    url: str | None = None
    size: str | None = None
    error: _Error | None = None


class _Usage(BaseModel):
    model_config = ConfigDict(extra="ignore")

    generated_images: int = 0
    output_tokens: int = 0
    total_tokens: int = 0


class _Response(BaseModel):
    model_config = ConfigDict(extra="ignore")

    data: list[_Item] = Field(default_factory=list)
    usage: _Usage | None = None
    error: _Error | None = None


class ArkProvider:
    """``ark``: generations, reference-image edits and group (sequential) generation."""

    name = "ark"

    def has_credentials(self, credentials: Mapping[str, str]) -> bool:
        return bool(credentials.get("api_key"))

    def _options(self, ctx: ProviderContext) -> ArkOptions:
        return ctx.options_as(ArkOptions, self.name)

    def _group(self, ctx: ProviderContext) -> bool:
        found = self._options(ctx).group
        return found if found is not None else "seedream-4" in ctx.upstream_model

    def images_per_call(self, request: ImageRequest, ctx: ProviderContext) -> int:
        return _MAX_TOTAL_IMAGES - len(request.images) if self._group(ctx) else 1

    def dropped_params(self, request: ImageRequest, ctx: ProviderContext) -> list[str]:
        set_here = {
            "style": request.style,
            "moderation": request.moderation,
            "mask": request.mask,
            "input_fidelity": request.input_fidelity,
        }
        dropped = [name for name, value in set_here.items() if value is not None]
        if "seed" in request.extras and self._group(ctx):
            dropped.append("seed")
        return sorted(dropped)

    def body(self, request: ImageRequest, ctx: ProviderContext) -> dict[str, Any]:
        """The generations body for ``request`` (see the module docstring)."""
        group = self._group(ctx)
        body: dict[str, Any] = {
            "model": ctx.upstream_model,
            "prompt": request.prompt,
            "size": "adaptive" if "seededit" in ctx.upstream_model else request.size,
            "response_format": "b64_json",
            "watermark": self._options(ctx).watermark,
        }
        if request.images:
            references = [_data_uri(image) for image in request.images[:_MAX_REFERENCES]]
            body["image"] = references if group and len(references) > 1 else references[0]
        if group:
            many = request.n > 1
            body["sequential_image_generation"] = "auto" if many else "disabled"
            if many:
                body["sequential_image_generation_options"] = {"max_images": request.n}
        elif "seed" in request.extras:
            body["seed"] = request.extras["seed"]
        for key in ("guidance_scale",):
            if key in request.extras:
                body[key] = request.extras[key]
        return body

    async def generate(self, request: ImageRequest, ctx: ProviderContext) -> ImageResult:
        if request.operation not in ("generate", "edit", "blend"):
            raise InvalidRequest(
                f"the ark upstream cannot {request.operation.replace('_', ' ')}",
                code="unsupported_operation",
            )
        headers = {**self._headers(ctx), "content-type": "application/json"}
        answer = await send(
            ctx, "POST", join(self._base(ctx), "api/v3/images/generations"), provider=self.name,
            headers=headers, content=json_body(self.body(request, ctx)),
        )  # fmt: skip
        if not answer.ok:
            raise self._error(answer, ctx)
        response = parse(_Response, answer.body, self.name)
        if response.error is not None and response.error.code:
            raise self._refusal(response.error, ctx) or status_error(
                502, response.error.message or "", provider=self.name, credentials=ctx.credentials
            )
        images = []
        refused: _Error | None = None
        for item in response.data:
            if item.b64_json:
                images.append(upstream_image(decode_b64(item.b64_json, self.name)))
            elif item.url and ctx.fetch is not None:
                images.append(upstream_image(await ctx.fetch(item.url)))
            elif item.error is not None:
                refused = item.error
        if not images:
            if refused is not None:
                raise self._refusal(refused, ctx) or no_image(self.name)
            raise no_image(self.name)
        usage = response.usage
        return ImageResult(
            images=images[: max(request.n, 1)],
            usage=Usage(output_image_tokens=usage.output_tokens) if usage else None,
        )

    async def stream(
        self, request: ImageRequest, ctx: ProviderContext
    ) -> AsyncIterator[StreamEvent]:
        yield await self.generate(request, ctx)

    async def check(self, ctx: ProviderContext) -> str:
        """A generation with an empty prompt: the key is checked before the body, so a 400
        means key and model were accepted, and nothing is generated or billed."""
        headers = {**self._headers(ctx), "content-type": "application/json"}
        answer = await send(
            ctx, "POST", join(self._base(ctx), "api/v3/images/generations"), provider=self.name,
            headers=headers, content=json_body({"model": ctx.upstream_model, "prompt": ""}),
            max_bytes=1 << 16,
        )  # fmt: skip
        if answer.status in (401, 403, 404, 429) or answer.status >= 500:
            raise self._error(answer, ctx)
        return f"{ctx.upstream_model}: key accepted"

    def _base(self, ctx: ProviderContext) -> str:
        return ctx.base_url or ARK_BASE_URL

    def _headers(self, ctx: ProviderContext) -> dict[str, str]:
        return {"authorization": f"Bearer {ctx.credentials.get('api_key', '')}"}

    def _refusal(self, error: _Error, ctx: ProviderContext) -> ContentPolicyViolation | None:
        stage = _SAFETY.get(error.code or "")
        if stage is None:
            return None
        message = redact(error.message or "the request was refused by Ark's safety check", {})
        return ContentPolicyViolation(
            f"ark: {message}", stage="prompt" if stage == "prompt" else "output",
            reason=error.code or "",
        )  # fmt: skip

    def _error(self, answer: Answer, ctx: ProviderContext) -> ImagegateError:
        try:
            error = _Envelope.model_validate_json(answer.body).error
        except ValidationError:
            error = None
        if error is not None:
            refusal = self._refusal(error, ctx)
            if refusal is not None:
                return refusal
        message = redact((error.message if error else None) or answer.text()[:200], ctx.credentials)
        return answer_error(
            answer,
            message,
            provider=self.name,
            credentials=ctx.credentials,
            code=error.code if error else None,
        )


def _data_uri(image: InputImage) -> str:
    encoded = pybase64.b64encode(image.data).decode("ascii")
    return f"data:image/{_MIME.get(image.format, 'png')};base64,{encoded}"
