"""Kling AI image generation as a task upstream.

Every call carries ``Authorization: Bearer <JWT>``: HS256 over ``{"iss": access key, "exp":
now + 30 min, "nbf": now - 5 s}``, signed with the secret key, as Kling's reference code does
(made here with :mod:`hmac`: signing our own token with one fixed algorithm needs no JWT
library; nothing untrusted is ever decoded).

``POST {base}/v1/images/generations`` ``{"model_name", "prompt", "negative_prompt", "n"
(1–9), "aspect_ratio", "image" (base64 of a reference image), "image_reference",
"image_fidelity", "human_fidelity"}`` → ``{"code": 0, "message", "request_id", "data":
{"task_id", "task_status"}}``; ``GET {base}/v1/images/generations/{task_id}`` →
``task_status`` ``submitted`` → ``processing`` → ``succeed`` (``task_result.images[].url``,
downloaded at once) or ``failed`` (``task_status_msg``).

Errors carry HTTP status and Kling's own ``code``: 1000–1004 authentication; 1100–1102
account problems (arrears, resource pack used up: the deployment cannot serve); 1103
forbidden; 1200/1201 invalid parameters; 1300/1301 the platform's or the content security
policy (a safety outcome); 1302/1303 rate or concurrency limit; 5000–5002 server errors.
``KLING_ACCESS_KEY``, ``KLING_SECRET_KEY``; ``KLING_BASE_URL`` (default the Singapore API).
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Mapping
from typing import Any, Final

import orjson
import pybase64
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from imagegate.core.requests import ImageRequest, ImageResult
from imagegate.core.upstream import JobStatus, ProviderContext, UpstreamJob
from imagegate.errors import (
    ContentPolicyViolation,
    ImagegateError,
    InvalidRequest,
    RateLimited,
    UpstreamError,
    UpstreamRejected,
)
from imagegate.providers._common import nearest_aspect_ratio, set_fields
from imagegate.providers._http import Answer, join, json_body, parse, send
from imagegate.providers.errors import redact, retry_after, status_error
from imagegate.providers.output import no_image, upstream_image

__all__ = ["KlingOptions", "KlingProvider", "kling_token"]

KLING_BASE_URL: Final = "https://api-singapore.klingai.com"
RATIOS: Final = ("16:9", "9:16", "1:1", "4:3", "3:4", "3:2", "2:3", "21:9")
_ACCOUNT: Final = frozenset({1100, 1101, 1102})
_SAFETY: Final = frozenset({1300, 1301})
_LIMITS: Final = frozenset({1302, 1303})


def _b64url(data: bytes) -> str:
    return pybase64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def kling_token(access_key: str, secret_key: str, now: float | None = None) -> str:
    """The HS256 JWT Kling wants: ``iss`` = access key, valid from 5 s ago for 30 minutes."""
    issued = int(time.time() if now is None else now)
    header = _b64url(orjson.dumps({"alg": "HS256", "typ": "JWT"}))
    claims = _b64url(orjson.dumps({"iss": access_key, "exp": issued + 1800, "nbf": issued - 5}))
    signing_input = f"{header}.{claims}".encode("ascii")
    signature = hmac.new(secret_key.encode(), signing_input, hashlib.sha256).digest()
    return f"{header}.{claims}.{_b64url(signature)}"


class KlingOptions(BaseModel):
    """A Kling deployment's ``options`` table."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    image_reference: str | None = None
    """``subject`` or ``face`` (kling-v1-5 reference modes)."""
    poll_interval: float = Field(default=1.0, gt=0)


class _Task(BaseModel):
    model_config = ConfigDict(extra="ignore")

    task_id: str = Field(min_length=1)
    task_status: str = "submitted"
    task_status_msg: str | None = None
    task_result: dict[str, Any] | None = None


class _Envelope(BaseModel):
    model_config = ConfigDict(extra="ignore")

    code: int = 0
    message: str = ""
    request_id: str | None = None
    data: _Task | None = None


class KlingProvider:
    """``kling``: JWT-signed task submit and polling."""

    name = "kling"

    def has_credentials(self, credentials: Mapping[str, str]) -> bool:
        return bool(credentials.get("access_key") and credentials.get("secret_key"))

    def _options(self, ctx: ProviderContext) -> KlingOptions:
        return ctx.options_as(KlingOptions, self.name)

    def images_per_call(self, request: ImageRequest, ctx: ProviderContext) -> int:
        return 9

    def dropped_params(self, request: ImageRequest, ctx: ProviderContext) -> list[str]:
        return set_fields(
            request, "moderation", "style", "input_fidelity", "mask", "output_compression"
        )

    def _base(self, ctx: ProviderContext) -> str:
        return ctx.base_url or KLING_BASE_URL

    def _headers(self, ctx: ProviderContext) -> dict[str, str]:
        token = kling_token(
            ctx.credentials.get("access_key", ""), ctx.credentials.get("secret_key", "")
        )
        return {"authorization": f"Bearer {token}", "content-type": "application/json"}

    def body(self, request: ImageRequest, ctx: ProviderContext) -> dict[str, Any]:
        """The task body (see the module docstring)."""
        options = self._options(ctx)
        body: dict[str, Any] = {
            "model_name": ctx.upstream_model,
            "prompt": request.prompt,
            "n": request.n,
            "aspect_ratio": nearest_aspect_ratio(request.width, request.height, RATIOS),
        }
        for key in ("negative_prompt", "image_fidelity", "human_fidelity", "image_reference"):
            if key in request.extras:
                body[key] = request.extras[key]
        if request.images:
            body["image"] = pybase64.b64encode(request.images[0].data).decode("ascii")
            if options.image_reference:
                body.setdefault("image_reference", options.image_reference)
            if request.strength is not None:
                body.setdefault("image_fidelity", round(1 - request.strength, 2))
            body.pop("negative_prompt", None)  # Kling refuses it together with an image
        return body

    async def submit(self, request: ImageRequest, ctx: ProviderContext) -> UpstreamJob:
        if request.operation not in ("generate", "edit", "variation"):
            raise InvalidRequest(
                f"the kling upstream cannot {request.operation.replace('_', ' ')}",
                code="unsupported_operation",
            )
        answer = await send(
            ctx, "POST", join(self._base(ctx), "v1/images/generations"), provider=self.name,
            headers=self._headers(ctx), content=json_body(self.body(request, ctx)),
            max_bytes=1 << 20,
        )  # fmt: skip
        task = self._task(answer, ctx)
        return UpstreamJob(task.task_id, poll_after=self._options(ctx).poll_interval)

    async def poll(self, job: UpstreamJob, ctx: ProviderContext) -> JobStatus:
        answer = await send(
            ctx, "GET", join(self._base(ctx), f"v1/images/generations/{job.id}"),
            provider=self.name, headers=self._headers(ctx), max_bytes=1 << 20,
        )  # fmt: skip
        task = self._task(answer, ctx)
        interval = self._options(ctx).poll_interval
        if task.task_status == "succeed":
            images = (task.task_result or {}).get("images") or []
            urls = [
                i["url"] for i in images if isinstance(i, dict) and isinstance(i.get("url"), str)
            ]
            if not urls:
                raise no_image(self.name)
            if ctx.fetch is None:
                raise UpstreamError("no result downloader", code="upstream_no_image")
            return JobStatus(
                result=ImageResult(images=[upstream_image(await ctx.fetch(u)) for u in urls])
            )
        if task.task_status == "failed":
            said = redact(task.task_status_msg or "", ctx.credentials)
            if any(word in said.lower() for word in ("risk", "security", "sensitive")):
                raise ContentPolicyViolation(f"kling: {said}", stage="output", reason="failed")
            raise UpstreamError(f"kling task failed: {said}", code="upstream_task_failed")
        progress = 50 if task.task_status == "processing" else None
        return JobStatus(progress=progress, poll_after=interval)

    async def cancel(self, job: UpstreamJob, ctx: ProviderContext) -> None:
        """Kling has no cancel call; an abandoned task finishes upstream."""

    async def check(self, ctx: ProviderContext) -> str:
        """``GET /v1/images/generations?pageNum=1&pageSize=1``: lists tasks (free)."""
        answer = await send(
            ctx, "GET", join(self._base(ctx), "v1/images/generations"), provider=self.name,
            headers=self._headers(ctx), params={"pageNum": "1", "pageSize": "1"},
            max_bytes=1 << 20,
        )  # fmt: skip
        if not answer.ok:
            raise self._error(answer, ctx)
        return "keys accepted"

    def _task(self, answer: Answer, ctx: ProviderContext) -> _Task:
        if not answer.ok:
            raise self._error(answer, ctx)
        envelope = parse(_Envelope, answer.body, self.name)
        if envelope.code != 0 or envelope.data is None:
            raise self._coded(answer.status, envelope.code, envelope.message, answer, ctx)
        return envelope.data

    def _error(self, answer: Answer, ctx: ProviderContext) -> ImagegateError:
        try:
            envelope = _Envelope.model_validate_json(answer.body)
            code, message = envelope.code, envelope.message
        except ValidationError:
            code, message = 0, answer.text()[:200]
        return self._coded(answer.status, code, message, answer, ctx)

    def _coded(
        self, status: int, code: int, message: str, answer: Answer, ctx: ProviderContext
    ) -> ImagegateError:
        said = redact(message, ctx.credentials)
        if code in _SAFETY:
            return ContentPolicyViolation(f"kling: {said}", stage="prompt", reason=str(code))
        if code in _ACCOUNT:
            return UpstreamRejected(f"kling ({code}): {said}", code="upstream_quota_exhausted")
        if code in _LIMITS:
            return RateLimited(
                f"kling ({code}): {said}",
                retry_after=retry_after(answer.headers),
                code="upstream_rate_limited",
            )
        if 200 <= status < 300:
            status = 500 if code >= 5000 else 400
        return status_error(
            status,
            f"{code}: {message}" if code else message,
            provider=self.name,
            credentials=ctx.credentials,
            hint=retry_after(answer.headers),
        )
