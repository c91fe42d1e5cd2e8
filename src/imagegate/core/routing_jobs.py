"""The router's helpers for task upstreams and fanned-out requests.

Boundary: :class:`TaskRunner` turns a :class:`~imagegate.core.upstream.TaskProvider`'s
``submit``/``poll`` into one awaited result (tolerating a few transient poll failures, and
cancelling the upstream job, in the background, when nobody waits for it any more);
:func:`split` and :func:`merge` cut ``n`` into parts and put the parts' results back together.
No routing decisions here: those are :mod:`imagegate.core.routing`'s.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Final

from imagegate.core.requests import ImageRequest, ImageResult, Usage
from imagegate.core.upstream import JobJournal, ProviderContext, TaskProvider, UpstreamJob
from imagegate.errors import ClientError, RateLimited, UpstreamError
from imagegate.observability import tracing

__all__ = ["TaskRunner", "merge", "split"]

log = logging.getLogger("imagegate.routing")

TRANSIENT_POLL: Final = frozenset(
    {"upstream_connection_error", "upstream_unreachable", "upstream_timeout", "upstream_error"}
)
CANCEL_SECONDS: Final = 10.0
GONE: Final = frozenset({"upstream_not_found"})
"""Codes of a poll that says the upstream no longer knows the job (a 404)."""


class TaskRunner:
    """Submits and polls task upstreams; keeps the background cancels alive until done."""

    def __init__(
        self,
        clock: Callable[[], float],
        sleep: Callable[[float], Awaitable[None]],
        poll_errors: Callable[[], int],
    ) -> None:
        self._clock = clock
        self._sleep = sleep
        self._poll_errors = poll_errors
        self._cancels: set[asyncio.Task[None]] = set()

    async def run(
        self,
        adapter: TaskProvider,
        request: ImageRequest,
        ctx: ProviderContext,
        journal: JobJournal | None = None,
        slot: str = "",
    ) -> ImageResult:
        """The job's result; the job's own failure (or a run of failed polls) is raised.

        With a ``journal`` (a durable task), a job an earlier run kept in ``slot`` is polled
        instead of submitting again; one the upstream no longer knows (404) is submitted
        afresh. A job just accepted is kept in the journal before the first poll."""
        known = journal.known(slot) if journal is not None else None
        if known is not None:
            log.info("%s: resuming upstream job %s (%s)", adapter.name, known.id, slot)
            try:
                return await self._poll(adapter, known, ctx, journal, slot)
            except UpstreamError as exc:
                if exc.code not in GONE:
                    raise
                log.warning("%s: upstream job %s is gone; submitting again", adapter.name, known.id)
        with tracing.span("upstream.submit", **{"imagegate.provider": adapter.name}):
            submitted = await adapter.submit(request, ctx)
        if isinstance(submitted, ImageResult):
            return submitted
        if journal is not None:
            try:
                await journal.accepted(slot, submitted)
            except BaseException:
                self.cancel_later(adapter, submitted, ctx)
                raise
        return await self._poll(adapter, submitted, ctx, journal, slot)

    async def _poll(
        self,
        adapter: TaskProvider,
        job: UpstreamJob,
        ctx: ProviderContext,
        journal: JobJournal | None,
        slot: str,
    ) -> ImageResult:
        """Poll ``job`` to its result. A job that failed, or that is cancelled because nobody
        waits for it any more, is forgotten (a retry submits afresh); one left running for the
        next run of a task whose server is stopping is kept."""
        delay, errors = job.poll_after, 0
        try:
            while True:
                await self._sleep(delay)
                try:
                    with tracing.span("upstream.poll", **{"imagegate.provider": adapter.name}):
                        status = await adapter.poll(job, ctx)
                except (RateLimited, UpstreamError) as exc:
                    transient = isinstance(exc, RateLimited) or exc.code in TRANSIENT_POLL
                    errors += 1
                    if not transient or errors > self._poll_errors():
                        raise
                    delay = max(job.poll_after, exc.retry_after or 0.0)
                    continue
                if status.result is not None:
                    return status.result
                errors, delay = 0, status.poll_after
        except asyncio.CancelledError:
            if journal is None or not journal.keeps_jobs():
                self._drop(adapter, job, ctx, journal, slot)
            raise
        except BaseException:
            self._drop(adapter, job, ctx, journal, slot)
            raise

    def _drop(
        self,
        adapter: TaskProvider,
        job: UpstreamJob,
        ctx: ProviderContext,
        journal: JobJournal | None,
        slot: str,
    ) -> None:
        if journal is not None:
            journal.forget(slot)
        self.cancel_later(adapter, job, ctx)

    def cancel_later(self, adapter: TaskProvider, job: UpstreamJob, ctx: ProviderContext) -> None:
        """Ask the upstream to stop a job nobody waits for, without holding anyone up."""
        spare = replace(ctx, deadline=self._clock() + CANCEL_SECONDS)

        async def cancel() -> None:
            with contextlib.suppress(Exception):
                await adapter.cancel(job, spare)

        task = asyncio.get_running_loop().create_task(cancel())
        self._cancels.add(task)
        task.add_done_callback(self._cancels.discard)


def split(n: int, per_call: int) -> list[int]:
    """``n`` images as parts of at most ``per_call``."""
    full, rest = divmod(n, per_call)
    return [per_call] * full + ([rest] if rest else [])


def merge(results: list[ImageResult | BaseException]) -> ImageResult:
    """One result from fanned-out parts; parts that failed are dropped when others delivered
    (the client is charged per delivered image)."""
    delivered = [r for r in results if isinstance(r, ImageResult)]
    failures = [r for r in results if not isinstance(r, ImageResult)]
    for failure in failures:
        if not isinstance(failure, Exception):
            raise failure  # cancellation and the like
    if not delivered:
        client = next((f for f in failures if isinstance(f, ClientError)), None)
        raise client or failures[0]
    if failures:
        log.warning("%d of %d parts failed; delivering the rest", len(failures), len(results))
    usages = [r.usage for r in delivered if r.usage is not None]
    usage = None
    if usages:
        usage = Usage(
            input_text_tokens=sum(u.input_text_tokens for u in usages),
            input_image_tokens=sum(u.input_image_tokens for u in usages),
            output_image_tokens=sum(u.output_image_tokens for u in usages),
            output_text_tokens=sum(u.output_text_tokens for u in usages),
        )
    texts = [r.text for r in delivered if r.text]
    first = delivered[0]
    return ImageResult(
        images=[image for r in delivered for image in r.images],
        usage=usage,
        background=first.background,
        quality=first.quality,
        text="\n".join(texts) if texts else None,
    )
