"""Google Gemini image models (``generateContent``) and Imagen (``predict``) as an upstream.

``POST {base}/v1beta/models/{model}:generateContent`` or ``…:predict``, the key in the
``x-goog-api-key`` header — never in the URL, where it would end up in access logs. The key is
``GEMINI_API_KEY`` or ``GOOGLE_API_KEY``; ``GOOGLE_GEMINI_BASE_URL`` (the google-genai SDK's own
variable) redirects the deployment.

Translation: the requested size becomes the nearest ``aspectRatio`` (and ``imageSize`` when the
deployment lists size classes in ``options.image_sizes``); input images go inline; ``n`` is one
image per ``generateContent`` call (the router fans out) and ``sampleCount`` (≤ 4) for Imagen.
Thought parts are skipped; a safety block (``promptFeedback.blockReason``, ``finishReason``
``IMAGE_SAFETY``/``SAFETY``/``PROHIBITED_CONTENT``…) becomes
:class:`~imagegate.errors.ContentPolicyViolation` with Google's own reason kept.

Options (a deployment's ``options`` table): ``method`` (``"generateContent"``/``"predict"``;
default: ``predict`` for ``imagen-*`` models), ``aspect_ratios``, ``image_sizes``,
``person_generation`` (Imagen), ``max_n``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from imagegate.core.requests import ImageRequest, ImageResult, StreamEvent
from imagegate.core.upstream import ProviderContext
from imagegate.errors import (
    ContentPolicyViolation,
    ImagegateError,
    InvalidRequest,
    RateLimited,
    UpstreamRejected,
)
from imagegate.providers import gemini_wire as wire
from imagegate.providers._http import Answer, join, json_body, parse, send
from imagegate.providers.errors import (
    parse_duration,
    redact,
    status_error,
)
from imagegate.providers.errors import retry_after as header_retry_after
from imagegate.providers.output import decode_b64, no_image, upstream_image

__all__ = ["GeminiOptions", "GeminiProvider"]

GEMINI_BASE_URL: Final = "https://generativelanguage.googleapis.com"
_REJECTED_REASONS: Final = frozenset({"API_KEY_INVALID", "API_KEY_SERVICE_BLOCKED"})
_PASSED_ON: Final = frozenset({"generate", "edit"})


class GeminiOptions(BaseModel):
    """A Gemini deployment's ``options`` table."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    method: Literal["generateContent", "predict"] | None = None
    aspect_ratios: list[str] | None = None
    image_sizes: list[str] = []
    person_generation: str | None = None
    max_n: int | None = Field(default=None, ge=1, le=8)


class GeminiProvider:
    """``gemini``: ``generateContent`` for Gemini image models, ``predict`` for Imagen."""

    name = "gemini"

    def has_credentials(self, credentials: Mapping[str, str]) -> bool:
        return bool(credentials.get("api_key"))

    def _options(self, ctx: ProviderContext) -> GeminiOptions:
        return ctx.options_as(GeminiOptions, self.name)

    def _method(self, ctx: ProviderContext) -> str:
        method = self._options(ctx).method
        if method is not None:
            return method
        return "predict" if ctx.upstream_model.startswith("imagen") else "generateContent"

    def images_per_call(self, request: ImageRequest, ctx: ProviderContext) -> int:
        options = self._options(ctx)
        if options.max_n is not None:
            return options.max_n
        return 4 if self._method(ctx) == "predict" else 1

    def dropped_params(self, request: ImageRequest, ctx: ProviderContext) -> list[str]:
        return [
            name
            for name, value in (
                ("moderation", request.moderation),
                ("style", request.style),
                ("input_fidelity", request.input_fidelity),
            )
            if value is not None
        ]

    def _headers(self, ctx: ProviderContext) -> dict[str, str]:
        return {"x-goog-api-key": ctx.credentials.get("api_key", "")}

    def _url(self, ctx: ProviderContext, method: str) -> str:
        return join(ctx.base_url or GEMINI_BASE_URL, f"v1beta/models/{ctx.upstream_model}:{method}")

    async def generate(self, request: ImageRequest, ctx: ProviderContext) -> ImageResult:
        if request.operation not in _PASSED_ON:
            raise InvalidRequest(
                f"the gemini upstream cannot {request.operation.replace('_', ' ')}",
                code="unsupported_operation",
            )
        options = self._options(ctx)
        if self._method(ctx) == "predict":
            return await self._predict(request, ctx, options)
        ratios = options.aspect_ratios or list(wire.GEMINI_ASPECT_RATIOS)
        body = wire.content_body(request, ratios, options.image_sizes)
        answer = await self._post(ctx, "generateContent", body)
        response = parse(wire.GenerateContentResponse, answer.body, self.name)
        images = []
        texts = []
        for candidate in response.candidates:
            for part in candidate.content.parts if candidate.content else ():
                if part.thought:
                    continue
                if part.inline_data is not None and part.inline_data.mime_type.startswith("image/"):
                    images.append(upstream_image(decode_b64(part.inline_data.data, self.name)))
                elif part.text:
                    texts.append(part.text)
        if not images:
            raise wire.blocked(response) or no_image(self.name, _said(texts))
        return ImageResult(
            images=images,
            usage=response.usage_metadata.domain() if response.usage_metadata else None,
            text="".join(texts) or None,
        )

    async def _predict(
        self, request: ImageRequest, ctx: ProviderContext, options: GeminiOptions
    ) -> ImageResult:
        if request.operation != "generate":
            raise InvalidRequest(
                "Imagen models only generate from text", code="unsupported_operation"
            )
        ratios = options.aspect_ratios or list(wire.IMAGEN_ASPECT_RATIOS)
        body = wire.predict_body(request, ratios, options.image_sizes, options.person_generation)
        answer = await self._post(ctx, "predict", body)
        response = parse(wire.PredictResponse, answer.body, self.name)
        images = [
            upstream_image(decode_b64(p.bytes_base64_encoded or "", self.name))
            for p in response.predictions
            if p.bytes_base64_encoded
        ]
        if not images:
            reasons = [p.rai_filtered_reason for p in response.predictions if p.rai_filtered_reason]
            if reasons:
                raise _filtered(reasons[0])
            raise no_image(self.name)
        return ImageResult(images=images)

    async def stream(
        self, request: ImageRequest, ctx: ProviderContext
    ) -> AsyncIterator[StreamEvent]:
        """Image models send the image whole: one final result, no partials."""
        yield await self.generate(request, ctx)

    async def check(self, ctx: ProviderContext) -> str:
        """``GET /v1beta/models/{model}`` (free)."""
        url = join(ctx.base_url or GEMINI_BASE_URL, f"v1beta/models/{ctx.upstream_model}")
        answer = await send(
            ctx, "GET", url, provider=self.name, headers=self._headers(ctx), max_bytes=1 << 20
        )
        if not answer.ok:
            raise self._error(answer, ctx)
        return f"{ctx.upstream_model}: reachable, key accepted"

    async def _post(self, ctx: ProviderContext, method: str, body: dict[str, Any]) -> Answer:
        headers = {**self._headers(ctx), "content-type": "application/json"}
        answer = await send(
            ctx, "POST", self._url(ctx, method), provider=self.name, headers=headers,
            content=json_body(body),
        )  # fmt: skip
        if not answer.ok:
            raise self._error(answer, ctx)
        return answer

    def _error(self, answer: Answer, ctx: ProviderContext) -> ImagegateError:
        try:
            error: wire.GoogleError | None = wire.GoogleErrorEnvelope.model_validate_json(
                answer.body
            ).error
        except ValidationError:
            error = None
        message = redact(error.message if error else "", ctx.credentials)
        hint = header_retry_after(answer.headers)
        if error is not None:
            if error.reasons() & _REJECTED_REASONS:
                return UpstreamRejected(
                    "gemini refused the configured API key; check GEMINI_API_KEY",
                    code="upstream_authentication_failed",
                )
            hint = parse_duration(error.retry_delay()) or hint
            if error.status == "FAILED_PRECONDITION":
                return UpstreamRejected(f"gemini: {message}", code="upstream_unavailable_here")
            if answer.status == 429:
                return RateLimited(
                    f"gemini answered 429: {message}",
                    retry_after=hint,
                    code="upstream_rate_limited",
                )
        return status_error(
            answer.status, message, provider=self.name, credentials=ctx.credentials, hint=hint
        )


def _said(texts: list[str]) -> str:
    text = " ".join(" ".join(texts).split())
    return f"it said: {text[:160]}" if text else ""


def _filtered(reason: str) -> ImagegateError:
    return ContentPolicyViolation(
        f"the upstream filtered every image it made ({reason[:200]})",
        stage="output",
        reason="RAI_FILTERED",
    )
