"""xAI image generation: the OpenAI Images dialect on ``https://api.x.ai/v1``.

``POST {base}/images/generations`` with ``Authorization: Bearer XAI_API_KEY`` takes ``model``,
``prompt``, ``n`` (1–10) and ``response_format`` (``url``/``b64_json``) and answers OpenAI's
``{"data": [{"b64_json"|"url", "revised_prompt"}]}``; xAI refuses ``size``, ``quality`` and
``style`` ("Argument not supported"). The Grok Imagine models (``grok-imagine-image``,
``grok-imagine-image-quality``) add two fields of their own, ``aspect_ratio`` and ``resolution``
(``1k``/``2k``): the requested size is sent as the nearest of them. ``grok-2-image`` takes
neither. Everything else (the translator, errors, downloads) is
:class:`~imagegate.providers.openai.OpenAIImagesAdapter`: the protocol is the same, so only the
host and these two fields differ. ``XAI_API_KEY``; ``XAI_BASE_URL`` redirects the deployment.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

import orjson
from pydantic import BaseModel, ConfigDict, ValidationError

from imagegate.core.requests import ImageRequest
from imagegate.core.upstream import ProviderContext
from imagegate.errors import ContentPolicyViolation, ImagegateError
from imagegate.providers._common import nearest_aspect_ratio
from imagegate.providers._http import Answer, answer_error
from imagegate.providers.errors import redact, status_error
from imagegate.providers.openai import OpenAIImagesAdapter, _Host

__all__ = ["XAI_ASPECT_RATIOS", "XAIProvider"]

XAI_BASE_URL: Final = "https://api.x.ai/v1"
XAI_ASPECT_RATIOS: Final = (
    "1:1", "4:3", "3:4", "3:2", "2:3", "16:9", "9:16", "2:1", "1:2", "20:9", "9:20",
)  # fmt: skip


class XAIProvider(OpenAIImagesAdapter):
    """``xai``: ``XAI_API_KEY`` (``XAI_BASE_URL`` redirects it)."""

    name = "xai"
    defaults: Mapping[str, Any] = {
        "base_url": XAI_BASE_URL,
        "params": ["response_format"],
        "streaming": False,
        "max_n": 10,
    }

    def dropped_params(self, request: ImageRequest, ctx: ProviderContext) -> list[str]:
        """``size`` is never reported: Grok Imagine gets it as ``aspect_ratio``/``resolution``,
        and grok-2-image's catalogue entry offers only the one size it draws."""
        return [name for name in super().dropped_params(request, ctx) if name != "size"]

    def _payload(
        self, request: ImageRequest, host: _Host, *, stream: bool
    ) -> tuple[str, bytes | None, Any, dict[str, str] | None, dict[str, str]]:
        url, content, files, data, headers = super()._payload(request, host, stream=False)
        if request.operation == "generate" and content is not None and _imagine(host.model):
            body = orjson.loads(content)
            body["aspect_ratio"] = nearest_aspect_ratio(
                request.width, request.height, XAI_ASPECT_RATIOS
            )
            body["resolution"] = "2k" if max(request.width, request.height) > 1536 else "1k"
            content = orjson.dumps(body)
        return url, content, files, data, headers

    def _error(self, answer: Answer, ctx: ProviderContext) -> ImagegateError:
        """xAI's envelope is ``{"code", "error"}`` (both strings); a wrong key is a 400 that
        says so, and a refused image is a 400 naming content moderation."""
        try:
            body: _XAIError | None = _XAIError.model_validate_json(answer.body)
        except ValidationError:
            body = None
        if body is None or not body.error:
            return super()._error(answer, ctx)
        message = redact(body.error, ctx.credentials)
        if answer.status in (400, 401, 403) and "api key" in message.lower():
            return status_error(401, message, provider=self.name, credentials=ctx.credentials)
        if "moderation" in message.lower():
            return ContentPolicyViolation(f"xai: {message}", stage="output", reason=body.code)
        return answer_error(
            answer,
            message,
            provider=self.name,
            credentials=ctx.credentials,
        )


class _XAIError(BaseModel):
    model_config = ConfigDict(extra="ignore")

    code: str | None = None
    error: str | None = None


def _imagine(model: str) -> bool:
    return model.startswith("grok-imagine")
