"""A Midjourney relay that speaks the midjourney-proxy API, as an upstream.

Two uses:

* **Domain requests** (any front end): ``generate``/``edit`` → ``POST /mj/submit/imagine``
  (``--ar W:H`` added from the size unless the prompt has one; input images as
  ``base64Array`` references), ``blend`` → ``/mj/submit/blend``, ``describe`` →
  ``/mj/submit/describe``; then ``GET /mj/task/{id}/fetch`` until ``SUCCESS``. The result is
  the 2×2 grid image (downloaded at once); a describe's result is its prompt text.
* **A 1:1 relay** for imagegate's own Midjourney front end: :meth:`MidjourneyProxyProvider.
  relay_submit` (imagine/action/modal/blend/describe/shorten/edits), :meth:`relay_fetch`,
  :meth:`relay_image_seed` and :meth:`relay_list` pass bodies through and return the
  validated answers.

Business codes: 1 submitted, 21 exists/needs a modal, 22 queued (all accepted), 23 queue full
(rate limited), 24 banned prompt (safety), 4 parameter error. The key goes in
``mj-api-secret`` (``options.auth_header`` to change it). ``MIDJOURNEY_PROXY_URL`` and
``MIDJOURNEY_PROXY_SECRET`` configure the built-in deployment.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any, Final, Literal

import pybase64
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from imagegate.core.midjourney.relaying import (
    ACCEPTED,
    QUEUE_FULL,
    MJTask,
    RelayRoute,
    SubmitAnswer,
)
from imagegate.core.requests import ImageRequest, ImageResult
from imagegate.core.upstream import JobStatus, ProviderContext, UpstreamJob
from imagegate.errors import (
    ContentPolicyViolation,
    ImagegateError,
    InvalidRequest,
    RateLimited,
    ServerError,
    UpstreamError,
)
from imagegate.providers._common import aspect_ratio_text, nearest_aspect_ratio
from imagegate.providers._http import Answer, join, json_body, parse, send
from imagegate.providers.errors import redact, retry_after, status_error
from imagegate.providers.output import upstream_image

__all__ = ["MidjourneyProxyProvider", "ProxyOptions"]

COMMON_RATIOS: Final = (
    "1:1", "16:9", "9:16", "4:3", "3:4", "3:2", "2:3", "5:4", "4:5", "21:9", "9:21", "2:1", "1:2",
)  # fmt: skip
_ASPECT: Final = re.compile(r"(^|\s)--(ar|aspect)\s", re.IGNORECASE)
_SAFETY_WORDS: Final = ("banned", "moderat", "blocked", "prohibited", "sensitive")


class ProxyOptions(BaseModel):
    """A midjourney-proxy deployment's ``options`` table."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    auth_header: str = "mj-api-secret"
    bot_type: Literal["MID_JOURNEY", "NIJI_JOURNEY"] = "MID_JOURNEY"
    modes: list[Literal["RELAX", "FAST", "TURBO"]] = []
    poll_interval: float = Field(default=2.0, gt=0)


_TASKS: Final = TypeAdapter(list[MJTask])


class MidjourneyProxyProvider:
    """``midjourney-proxy``: grids for any front end, a 1:1 relay for the Midjourney one."""

    name = "midjourney-proxy"
    requires_base_url = True
    """A relay has no public address: a deployment without a base URL is not available."""

    def has_credentials(self, credentials: Mapping[str, str]) -> bool:
        return bool(credentials.get("api_key"))

    def _options(self, ctx: ProviderContext) -> ProxyOptions:
        return ctx.options_as(ProxyOptions, self.name)

    def images_per_call(self, request: ImageRequest, ctx: ProviderContext) -> int:
        return 1

    def dropped_params(self, request: ImageRequest, ctx: ProviderContext) -> list[str]:
        set_here = {
            "moderation": request.moderation,
            "style": request.style,
            "quality": None,
            "mask": request.mask,
        }
        return sorted(name for name, value in set_here.items() if value is not None)

    def poll_interval(self, ctx: ProviderContext) -> float:
        """Seconds between polls of a task (``options.poll_interval``)."""
        return self._options(ctx).poll_interval

    def _headers(self, ctx: ProviderContext) -> dict[str, str]:
        key = ctx.credentials.get("api_key", "")
        return {self._options(ctx).auth_header: key, "content-type": "application/json"}

    def _url(self, ctx: ProviderContext, path: str) -> str:
        if not ctx.base_url:
            raise ServerError("the midjourney-proxy deployment has no base URL")
        return join(ctx.base_url, path)

    # -- the 1:1 relay --------------------------------------------------------------------

    async def relay_submit(
        self, route: RelayRoute, body: Mapping[str, Any], ctx: ProviderContext
    ) -> SubmitAnswer:
        """``POST /mj/submit/{route}`` with ``body`` as given; the validated answer."""
        answer = await self._call(ctx, "POST", f"mj/submit/{route}", dict(body))
        return parse(SubmitAnswer, answer.body, self.name)

    async def relay_fetch(self, task_id: str, ctx: ProviderContext) -> MJTask:
        """``GET /mj/task/{id}/fetch``."""
        answer = await self._call(ctx, "GET", f"mj/task/{task_id}/fetch")
        return parse(MJTask, answer.body, self.name)

    async def relay_image_seed(self, task_id: str, ctx: ProviderContext) -> SubmitAnswer:
        """``GET /mj/task/{id}/image-seed``: ``result`` is the seed of a finished task."""
        answer = await self._call(ctx, "GET", f"mj/task/{task_id}/image-seed")
        return parse(SubmitAnswer, answer.body, self.name)

    async def relay_list(self, ids: list[str], ctx: ProviderContext) -> list[MJTask]:
        """``POST /mj/task/list-by-condition`` with ``{"ids": ids}``."""
        answer = await self._call(ctx, "POST", "mj/task/list-by-condition", {"ids": ids}, 4 << 20)
        try:
            return _TASKS.validate_json(answer.body)
        except ValidationError:
            raise UpstreamError(
                "midjourney-proxy sent an invalid task list", code="upstream_bad_response"
            ) from None

    async def _call(
        self,
        ctx: ProviderContext,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        max_bytes: int = 1 << 20,
    ) -> Answer:
        """One call to the relay; a non-2xx answer is raised as its domain error."""
        content = None if body is None else json_body(body)
        answer = await send(
            ctx, method, self._url(ctx, path), provider=self.name, headers=self._headers(ctx),
            content=content, max_bytes=max_bytes,
        )  # fmt: skip
        if not answer.ok:
            raise self._error(answer, ctx)
        return answer

    # -- domain requests ------------------------------------------------------------------

    def submission(self, request: ImageRequest, ctx: ProviderContext) -> tuple[str, dict[str, Any]]:
        """The submit route and body for a domain request."""
        options = self._options(ctx)
        common: dict[str, Any] = {"botType": options.bot_type}
        if options.modes:
            common["accountFilter"] = {"modes": list(options.modes)}
        uris = [
            f"data:{image.mime_type};base64,{pybase64.b64encode(image.data).decode('ascii')}"
            for image in request.images
        ]
        if request.operation == "blend":
            ratio = request.width / request.height
            dimensions = "SQUARE" if 0.9 < ratio < 1.1 else "LANDSCAPE" if ratio > 1 else "PORTRAIT"
            return "blend", {**common, "base64Array": uris[:5], "dimensions": dimensions}
        if request.operation == "describe":
            return "describe", {**common, "base64": uris[0] if uris else ""}
        if request.operation not in ("generate", "edit"):
            raise InvalidRequest(
                f"the midjourney-proxy upstream cannot {request.operation.replace('_', ' ')}",
                code="unsupported_operation",
            )
        prompt = request.prompt.strip()
        if not _ASPECT.search(" " + prompt):
            prompt += f" --ar {_aspect(request.width, request.height)}"
        seed = request.extras.get("seed")
        if isinstance(seed, int) and not isinstance(seed, bool) and "--seed" not in prompt:
            prompt += f" --seed {seed}"
        body = {**common, "prompt": prompt}
        if uris:
            body["base64Array"] = uris
        return "imagine", body

    async def submit(self, request: ImageRequest, ctx: ProviderContext) -> UpstreamJob:
        route, body = self.submission(request, ctx)
        answer = await self.relay_submit(route, body, ctx)  # type: ignore[arg-type]
        if answer.code not in ACCEPTED or answer.result in (None, ""):
            raise self.refusal(answer, ctx)
        return UpstreamJob(str(answer.result), poll_after=self._options(ctx).poll_interval)

    async def poll(self, job: UpstreamJob, ctx: ProviderContext) -> JobStatus:
        return await self.outcome(await self.relay_fetch(job.id, ctx), ctx)

    async def outcome(self, task: MJTask, ctx: ProviderContext) -> JobStatus:
        """What a fetched task means: its result (the image downloaded at once, or a
        describe's text) when it succeeded, its progress while it runs; a failure is raised
        as its domain error."""
        interval = self._options(ctx).poll_interval
        if task.status == "SUCCESS":
            if task.action == "DESCRIBE":
                text = task.promptEn or str(task.properties.get("finalPrompt", ""))
                return JobStatus(result=ImageResult(images=[], text=text or None))
            if not task.imageUrl or ctx.fetch is None:
                raise UpstreamError(
                    "midjourney-proxy finished without an image", code="upstream_no_image"
                )
            return JobStatus(
                result=ImageResult(images=[upstream_image(await ctx.fetch(task.imageUrl))])
            )
        if task.status == "FAILURE":
            reason = redact(task.failReason or "no reason given", ctx.credentials)
            if any(word in reason.lower() for word in _SAFETY_WORDS):
                raise ContentPolicyViolation(
                    f"midjourney refused the prompt: {reason}",
                    stage="prompt",
                    reason="BANNED_PROMPT",
                )
            raise UpstreamError(f"midjourney task failed: {reason}", code="upstream_task_failed")
        if task.status == "CANCEL":
            raise UpstreamError("midjourney task was cancelled", code="upstream_task_failed")
        return JobStatus(progress=_percent(task.progress), poll_after=interval)

    async def cancel(self, job: UpstreamJob, ctx: ProviderContext) -> None:
        """midjourney-proxy has no cancel call; the task finishes on the relay."""

    async def check(self, ctx: ProviderContext) -> str:
        """``POST /mj/task/list-by-condition`` with no ids (answers ``[]``)."""
        await self.relay_list([], ctx)
        return "relay reachable, secret accepted"

    def refusal(self, answer: SubmitAnswer, ctx: ProviderContext) -> ImagegateError:
        """The domain error for a submit the relay did not accept."""
        said = redact(answer.description, ctx.credentials)
        if answer.code == 24:
            return ContentPolicyViolation(
                f"midjourney refused the prompt: {said}", stage="prompt", reason="BANNED_PROMPT"
            )
        if answer.code == QUEUE_FULL:
            return RateLimited(
                f"midjourney-proxy queue is full: {said}",
                retry_after=10,
                code="upstream_rate_limited",
            )
        if answer.code == 4:
            return InvalidRequest(f"midjourney-proxy: {said}", code="upstream_invalid_request")
        return UpstreamError(
            f"midjourney-proxy answered code {answer.code}: {said}", code="upstream_error"
        )

    def _error(self, answer: Answer, ctx: ProviderContext) -> ImagegateError:
        try:
            message = SubmitAnswer.model_validate_json(answer.body).description
        except ValidationError:
            message = ""
        return status_error(
            answer.status, message, provider=self.name, credentials=ctx.credentials,
            hint=retry_after(answer.headers),
        )  # fmt: skip


def _aspect(width: int, height: int) -> str:
    """``--ar`` for a size: the common ratio it is within 1% of (Midjourney's own 16:9 size is
    1456×816), else the exact one."""
    common = nearest_aspect_ratio(width, height, COMMON_RATIOS)
    across, down = (int(side) for side in common.split(":"))
    if abs(math.log(width / height) - math.log(across / down)) < 0.01:
        return common
    return aspect_ratio_text(width, height)


def _percent(progress: str | None) -> int | None:
    if not progress:
        return None
    digits = progress.strip().rstrip("%")
    return int(float(digits)) if digits.replace(".", "", 1).isdigit() else None
