"""Ideogram 3.0 as an upstream (multipart requests, ``Api-Key`` header, answers in one call).

* generate: ``POST {base}/v1/ideogram-v3/generate`` — ``prompt``, ``aspect_ratio`` (``"16x9"``
  form, the nearest of Ideogram's list), ``rendering_speed`` (the deployment's ``model``:
  ``TURBO``/``DEFAULT``/``QUALITY``), ``num_images`` (1–8), ``seed``, ``negative_prompt``,
  ``magic_prompt``, ``style_type``.
* edit with a mask: ``POST /v1/ideogram-v3/edit`` — ``image``, ``mask`` (black = edit, white =
  keep: converted from the domain's alpha mask), ``prompt``, ``num_images``, ``seed``,
  ``rendering_speed``.
* edit without a mask, and variations: ``POST /v1/ideogram-v3/remix`` — ``image``, ``prompt``,
  ``image_weight`` (0–100, from ``strength``), ``aspect_ratio``, ``num_images``.
* describe: ``POST /describe`` — ``image_file``, ``describe_model_version=V_3`` →
  ``{"descriptions": [{"text"}]}``.

Answers ``{"created", "data": [{"url", "resolution", "is_image_safe", "seed", "prompt"}]}``;
URLs are ephemeral, so each image is downloaded at once; an image with ``is_image_safe`` false
is left out (all of them: a safety outcome). Errors: 401/403, 400/422 (422 is also how a
prompt that failed the safety check is refused), 429. ``IDEOGRAM_API_KEY``;
``IDEOGRAM_BASE_URL``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any, Final

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from imagegate.core.requests import ImageRequest, ImageResult, StreamEvent
from imagegate.core.upstream import ProviderContext
from imagegate.errors import (
    ContentPolicyViolation,
    ImagegateError,
    InvalidRequest,
    UpstreamError,
)
from imagegate.providers._common import nearest_aspect_ratio, set_fields
from imagegate.providers._http import Answer, answer_error, join, parse, send
from imagegate.providers._masks import black_and_white
from imagegate.providers.errors import redact
from imagegate.providers.output import no_image, upstream_image

__all__ = ["IdeogramProvider"]

IDEOGRAM_BASE_URL: Final = "https://api.ideogram.ai"
RATIOS: Final = (
    "1:3", "3:1", "1:2", "2:1", "9:16", "16:9", "10:16", "16:10", "2:3", "3:2", "3:4", "4:3",
    "4:5", "5:4", "1:1",
)  # fmt: skip
SPEEDS: Final = frozenset({"FLASH", "TURBO", "DEFAULT", "QUALITY"})
_PASSED: Final = ("seed", "negative_prompt", "magic_prompt", "style_type")


class _Image(BaseModel):
    model_config = ConfigDict(extra="ignore")

    url: str | None = None
    is_image_safe: bool = True
    resolution: str | None = None
    prompt: str | None = None


class _Generated(BaseModel):
    model_config = ConfigDict(extra="ignore")

    data: list[_Image] = []


class _Description(BaseModel):
    model_config = ConfigDict(extra="ignore")

    text: str = ""


class _Described(BaseModel):
    model_config = ConfigDict(extra="ignore")

    descriptions: list[_Description] = Field(default_factory=list)


class IdeogramProvider:
    """``ideogram``: generate, edit (mask), remix (variation), describe."""

    name = "ideogram"

    def has_credentials(self, credentials: Mapping[str, str]) -> bool:
        return bool(credentials.get("api_key"))

    def images_per_call(self, request: ImageRequest, ctx: ProviderContext) -> int:
        return 8

    def dropped_params(self, request: ImageRequest, ctx: ProviderContext) -> list[str]:
        return set_fields(request, "moderation", "style", "input_fidelity", "output_compression")

    def _base(self, ctx: ProviderContext) -> str:
        return ctx.base_url or IDEOGRAM_BASE_URL

    def _headers(self, ctx: ProviderContext) -> dict[str, str]:
        return {"api-key": ctx.credentials.get("api_key", ""), "accept": "application/json"}

    def _speed(self, ctx: ProviderContext) -> str:
        speed = ctx.upstream_model.upper()
        return speed if speed in SPEEDS else "DEFAULT"

    def form(self, request: ImageRequest, ctx: ProviderContext) -> dict[str, str]:
        """The text fields of the request (see the module docstring)."""
        fields: dict[str, str] = {
            "prompt": request.prompt,
            "rendering_speed": self._speed(ctx),
            "num_images": str(request.n),
        }
        fields.update({k: str(v) for k, v in request.extras.items() if k in _PASSED})
        if request.operation == "generate" or (
            request.operation in ("edit", "variation") and request.mask is None
        ):
            ratio = nearest_aspect_ratio(request.width, request.height, RATIOS)
            fields["aspect_ratio"] = ratio.replace(":", "x")
        if request.mask is not None:
            fields.pop("negative_prompt", None)  # the edit endpoint takes none
        if request.operation in ("edit", "variation") and request.mask is None:
            strength = request.strength if request.strength is not None else 0.5
            fields["image_weight"] = str(round((1 - strength) * 100))
        return fields

    async def generate(self, request: ImageRequest, ctx: ProviderContext) -> ImageResult:
        if request.operation == "describe":
            return await self._describe(request, ctx)
        files: list[tuple[str, tuple[str, bytes, str]]] = []
        if request.operation == "generate":
            path = "v1/ideogram-v3/generate"
        elif request.operation in ("edit", "variation") and request.images:
            image = request.images[0]
            files.append(("image", (f"image.{image.format}", image.data, image.mime_type)))
            if request.mask is not None:
                path = "v1/ideogram-v3/edit"
                mask = black_and_white(request.mask, change="black")
                files.append(("mask", ("mask.png", mask, "image/png")))
            else:
                path = "v1/ideogram-v3/remix"
        else:
            raise InvalidRequest(
                f"the ideogram upstream cannot {request.operation.replace('_', ' ')}",
                code="unsupported_operation",
            )
        form = self.form(request, ctx)
        answer = await send(
            ctx, "POST", join(self._base(ctx), path), provider=self.name,
            headers=self._headers(ctx), files=files, data=form, max_bytes=1 << 20,
        )  # fmt: skip
        if not answer.ok:
            raise self._error(answer, ctx)
        data = parse(_Generated, answer.body, self.name).data
        if not data:
            raise no_image(self.name)
        safe = [item for item in data if item.is_image_safe and item.url]
        if not safe:
            raise ContentPolicyViolation(
                "ideogram withheld every image as unsafe", stage="output", reason="IMAGE_UNSAFE"
            )
        if ctx.fetch is None:
            raise UpstreamError("no result downloader", code="upstream_no_image")
        images = [upstream_image(await ctx.fetch(item.url or "")) for item in safe]
        return ImageResult(images=images, quality=request.quality)

    async def _describe(self, request: ImageRequest, ctx: ProviderContext) -> ImageResult:
        if not request.images:
            raise InvalidRequest("describe needs an image", param="image")
        image = request.images[0]
        answer = await send(
            ctx, "POST", join(self._base(ctx), "describe"), provider=self.name,
            headers=self._headers(ctx),
            files=[("image_file", (f"image.{image.format}", image.data, image.mime_type))],
            data={"describe_model_version": "V_3"}, max_bytes=1 << 20,
        )  # fmt: skip
        if not answer.ok:
            raise self._error(answer, ctx)
        texts = [d.text for d in parse(_Described, answer.body, self.name).descriptions if d.text]
        if not texts:
            raise UpstreamError("ideogram described nothing", code="upstream_no_text")
        return ImageResult(images=[], text="\n\n".join(f"{i}. {t}" for i, t in enumerate(texts, 1)))

    async def stream(
        self, request: ImageRequest, ctx: ProviderContext
    ) -> AsyncIterator[StreamEvent]:
        yield await self.generate(request, ctx)

    async def check(self, ctx: ProviderContext) -> str:
        """A generate call without a prompt: the key is checked before the body, and an
        invalid body is refused before anything is drawn or billed."""
        answer = await send(
            ctx, "POST", join(self._base(ctx), "v1/ideogram-v3/generate"), provider=self.name,
            headers=self._headers(ctx), files=[], data={"rendering_speed": "TURBO"},
            max_bytes=1 << 16,
        )  # fmt: skip
        if answer.status in (400, 422) or answer.ok:
            return "key accepted"
        raise self._error(answer, ctx)

    def _error(self, answer: Answer, ctx: ProviderContext) -> ImagegateError:
        message = _message(answer)
        if answer.status == 422 and "safety" in message.lower():
            return ContentPolicyViolation(
                f"ideogram: {redact(message, ctx.credentials)}", stage="prompt", reason="SAFETY"
            )
        return answer_error(
            answer,
            message,
            provider=self.name,
            credentials=ctx.credentials,
        )


class _Error(BaseModel):
    model_config = ConfigDict(extra="ignore")

    error: str | None = None
    detail: str | list[dict[str, Any]] | None = None
    message: str | None = None


def _message(answer: Answer) -> str:
    try:
        body = _Error.model_validate_json(answer.body)
    except ValidationError:
        return answer.text()[:200]
    if isinstance(body.detail, list):
        return "; ".join(str(item.get("msg", "")) for item in body.detail[:3])
    return body.error or body.detail or body.message or ""
