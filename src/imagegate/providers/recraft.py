"""Recraft V3 as an upstream: raster and vector (SVG) images, vectorize, remove background.

* generate: ``POST {base}/v1/images/generations`` (``Authorization: Bearer``), JSON
  ``{"prompt", "model": "recraftv3", "style", "substyle", "size": "WxH", "n",
  "response_format": "url", "negative_prompt"}`` → ``{"created", "data": [{"url",
  "image_id"}]}``. ``style``: ``vector_illustration`` (or ``options.vector_style``) when the
  client asks for ``output_format=svg``, else the request's ``style``/``options.style``
  (default ``realistic_image``). ``size``: the nearest of Recraft's list; ``n`` 1–6.
* vectorize: ``POST /v1/images/vectorize`` (multipart ``file``) → ``{"image": {"url"}}`` —
  an edit or variation asked for as ``svg``.
* remove background: ``POST /v1/images/removeBackground`` (multipart ``file``) → the same.

Result URLs are downloaded at once (never handed out). Error bodies are plain text (401
``request unauthorized``) or JSON (``{"code", "message"}`` is read when present).
``RECRAFT_API_KEY``; ``RECRAFT_BASE_URL`` (default ``https://external.api.recraft.ai``).
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Mapping
from typing import Any, Final

from pydantic import BaseModel, ConfigDict, ValidationError

from imagegate.core.requests import GeneratedImage, ImageRequest, ImageResult, StreamEvent
from imagegate.core.upstream import ProviderContext
from imagegate.errors import (
    ContentPolicyViolation,
    ImagegateError,
    InvalidRequest,
    UpstreamError,
)
from imagegate.imaging.inspect import sniff_format
from imagegate.providers._http import Answer, answer_error, join, json_body, parse, send
from imagegate.providers.errors import redact
from imagegate.providers.output import no_image, upstream_image

__all__ = ["RecraftOptions", "RecraftProvider"]

RECRAFT_BASE_URL: Final = "https://external.api.recraft.ai"
SIZES: Final = (
    (1024, 1024), (1365, 1024), (1024, 1365), (1536, 1024), (1024, 1536), (1820, 1024),
    (1024, 1820), (1024, 2048), (2048, 1024), (1434, 1024), (1024, 1434), (1024, 1280),
    (1280, 1024), (1024, 1707), (1707, 1024),
)  # fmt: skip
_SAFETY_CODES: Final = frozenset({"inappropriate_content", "prompt_blocked", "nsfw"})


class RecraftOptions(BaseModel):
    """A Recraft deployment's ``options`` table."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    style: str = "realistic_image"
    vector_style: str = "vector_illustration"
    substyle: str | None = None


class _Item(BaseModel):
    model_config = ConfigDict(extra="ignore")

    url: str | None = None
    b64_json: str | None = None


class _Generated(BaseModel):
    model_config = ConfigDict(extra="ignore")

    data: list[_Item] = []


class _Single(BaseModel):
    model_config = ConfigDict(extra="ignore")

    image: _Item


def nearest_size(width: int, height: int) -> tuple[int, int]:
    wanted = math.log(width / height)
    return min(SIZES, key=lambda s: (abs(math.log(s[0] / s[1]) - wanted), s[0] * s[1]))


class RecraftProvider:
    """``recraft``: generations (raster or SVG), vectorize, removeBackground."""

    name = "recraft"

    def has_credentials(self, credentials: Mapping[str, str]) -> bool:
        return bool(credentials.get("api_key"))

    def _options(self, ctx: ProviderContext) -> RecraftOptions:
        return ctx.options_as(RecraftOptions, self.name)

    def images_per_call(self, request: ImageRequest, ctx: ProviderContext) -> int:
        return 6 if request.operation == "generate" else 1

    def dropped_params(self, request: ImageRequest, ctx: ProviderContext) -> list[str]:
        set_here: dict[str, Any] = {
            "moderation": request.moderation,
            "input_fidelity": request.input_fidelity,
            "mask": request.mask,
            "output_compression": request.output_compression,
        }
        if request.operation != "generate":
            set_here["style"] = request.style
        return sorted(name for name, value in set_here.items() if value is not None)

    def _base(self, ctx: ProviderContext) -> str:
        return ctx.base_url or RECRAFT_BASE_URL

    def _headers(self, ctx: ProviderContext) -> dict[str, str]:
        return {"authorization": f"Bearer {ctx.credentials.get('api_key', '')}"}

    def body(self, request: ImageRequest, ctx: ProviderContext) -> dict[str, Any]:
        """The generations body (see the module docstring)."""
        options = self._options(ctx)
        vector = request.output_format == "svg"
        width, height = nearest_size(request.width, request.height)
        body: dict[str, Any] = {
            "prompt": request.prompt,
            "model": ctx.upstream_model or "recraftv3",
            "style": options.vector_style if vector else (request.style or options.style),
            "size": f"{width}x{height}",
            "n": request.n,
            "response_format": "url",
        }
        if options.substyle and not vector:
            body["substyle"] = options.substyle
        for key in ("negative_prompt", "substyle", "style_id", "controls"):
            if key in request.extras:
                body[key] = request.extras[key]
        return body

    async def generate(self, request: ImageRequest, ctx: ProviderContext) -> ImageResult:
        if request.operation == "generate":
            answer = await send(
                ctx, "POST", join(self._base(ctx), "v1/images/generations"), provider=self.name,
                headers={**self._headers(ctx), "content-type": "application/json"},
                content=json_body(self.body(request, ctx)), max_bytes=1 << 20,
            )  # fmt: skip
            if not answer.ok:
                raise self._error(answer, ctx)
            items = parse(_Generated, answer.body, self.name).data
        elif request.images and (
            request.operation == "remove_background"
            or (request.operation in ("edit", "variation") and request.output_format == "svg")
        ):
            path = (
                "v1/images/removeBackground"
                if request.operation == "remove_background"
                else "v1/images/vectorize"
            )
            image = request.images[0]
            answer = await send(
                ctx, "POST", join(self._base(ctx), path), provider=self.name,
                headers=self._headers(ctx),
                files=[("file", (f"image.{image.format}", image.data, image.mime_type))],
                max_bytes=1 << 20,
            )  # fmt: skip
            if not answer.ok:
                raise self._error(answer, ctx)
            items = [parse(_Single, answer.body, self.name).image]
        else:
            raise InvalidRequest(
                f"the recraft upstream cannot {request.operation.replace('_', ' ')} "
                "(it vectorizes an edit or variation asked for as svg)",
                code="unsupported_operation",
            )
        urls = [item.url for item in items if item.url]
        if not urls:
            raise no_image(self.name)
        if ctx.fetch is None:
            raise UpstreamError("no result downloader", code="upstream_no_image")
        images = [_image(await ctx.fetch(url), request) for url in urls]
        return ImageResult(
            images=images,
            background="transparent" if request.operation == "remove_background" else "opaque",
        )

    async def stream(
        self, request: ImageRequest, ctx: ProviderContext
    ) -> AsyncIterator[StreamEvent]:
        yield await self.generate(request, ctx)

    async def check(self, ctx: ProviderContext) -> str:
        """``GET /v1/users/me``: the account and its credits (free)."""
        answer = await send(
            ctx, "GET", join(self._base(ctx), "v1/users/me"), provider=self.name,
            headers=self._headers(ctx), max_bytes=1 << 16,
        )  # fmt: skip
        if not answer.ok:
            raise self._error(answer, ctx)
        credits = parse(_Me, answer.body, self.name).credits
        return f"key accepted ({credits} credits)" if credits is not None else "key accepted"

    def _error(self, answer: Answer, ctx: ProviderContext) -> ImagegateError:
        code, message = _envelope(answer)
        if code in _SAFETY_CODES:
            return ContentPolicyViolation(
                f"recraft: {redact(message, ctx.credentials)}", stage="prompt", reason=code
            )
        return answer_error(
            answer,
            f"{code}: {message}" if code else message,
            provider=self.name,
            credentials=ctx.credentials,
            code="insufficient_quota" if code == "not_enough_credits" else None,
        )


def _image(data: bytes, request: ImageRequest) -> GeneratedImage:
    if sniff_format(data[:4096]) == "svg":
        return GeneratedImage(data, "svg", request.width, request.height)
    return upstream_image(data)


class _Me(BaseModel):
    model_config = ConfigDict(extra="ignore")

    credits: int | None = None


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
