"""The router: sends a validated request to a model's deployments and survives their failures.

Boundary: a catalogue entry and an :class:`~imagegate.core.requests.ImageRequest` in; one
conformed :class:`~imagegate.core.requests.ImageResult` (or a stream ending in one) out, or a
domain error. It wraps adapters and never lives inside them: adapters answer one call; the
router decides which deployment, how often, how long, and how many at once. It stores and
charges nothing (the caller does, once, from the one result it gets back).

For each request (each part, when ``n`` is fanned out to upstreams that take fewer images
per call):

1. Pick a deployment: highest ``priority`` first, then by ``weight`` at random; skip ones
   whose breaker is open, that a 429 blocked, that are out of ``rpm``, or (while another has
   room) that are at ``max_concurrency``; prefer ones not yet tried for this request.
2. Call it within the attempt's deadline (the deployment's ``timeout``, never past the
   request's own deadline). Task upstreams are submitted and polled here.
3. On failure: a client error (400, a safety block) goes straight back. A 429 blocks that
   deployment for its ``retry-after`` and the next one is tried, or, when there is none,
   the router waits it out if that fits :attr:`RouterSettings.max_wait` and the deadline. Other
   upstream failures count against the breaker and are retried with jittered exponential
   backoff (honouring ``retry-after``), failing over first. A credentials refusal fails over.
4. After :attr:`RouterSettings.max_attempts` calls, the last error goes back (a 502 for an
   upstream's error or garbage, a 504 for a timeout, a 429 with the upstream's hint). When no
   deployment could be reached (all unreachable or answering 503) or none could even be tried
   (every breaker open, every one rate-limited past the wait), it is a 503 with
   ``Retry-After`` (when the first deployment will be worth trying again).

Every result passes :func:`imagegate.core.conform.conform` (images in the asked format,
real sizes; a 200 without an image is a retryable failure).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import cast

from imagegate.core.catalog import CatalogEntry
from imagegate.core.conform import conform
from imagegate.core.requests import ImageRequest, ImageResult, PartialImage, StreamEvent
from imagegate.core.routing_jobs import TaskRunner, merge, split
from imagegate.core.routing_state import Deployment, RouterSettings
from imagegate.core.upstream import (
    AdapterRegistry,
    Capabilities,
    ImageProvider,
    JobJournal,
    ProviderContext,
    ResultDownloads,
    TaskProvider,
    UpstreamHttp,
)
from imagegate.errors import (
    ClientError,
    ImagegateError,
    RateLimited,
    Unavailable,
    UpstreamError,
    UpstreamRejected,
    UpstreamTimeout,
)
from imagegate.observability import metrics
from imagegate.observability.upstream import observed_call

__all__ = ["Router", "RouterSettings"]

log = logging.getLogger("imagegate.routing")

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]


@dataclass(slots=True)
class _Tries:
    """What one routed call has done so far."""

    deadline: float
    attempts: int = 0
    tried: set[str] = field(default_factory=set)
    last: ImagegateError | None = None
    failed_at: float = 0.0


class Router:
    """Routes requests over deployments; one per process, shared by every request."""

    def __init__(
        self,
        registry: AdapterRegistry,
        http: UpstreamHttp | None,
        *,
        downloader: ResultDownloads,
        settings: RouterSettings | None = None,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self.settings = settings or RouterSettings()
        self._registry = registry
        self._http = http
        self._downloader = downloader
        self._clock = clock
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._deployments: dict[str, list[Deployment]] = {}
        self._tasks = TaskRunner(clock, sleep, lambda: self.settings.poll_errors)

    # -- deployments ----------------------------------------------------------------------

    def deployments(self, entry: CatalogEntry) -> list[Deployment]:
        """The model's usable deployments, in catalogue order, state kept across requests."""
        model_id = entry.spec.id
        found = self._deployments.get(model_id)
        if found is None:
            found = []
            for index, spec in enumerate(entry.available_deployments):
                adapter = self._registry.get(spec.provider)
                if adapter is not None:
                    key = f"{model_id}#{index}:{spec.provider}"
                    dep = Deployment(key, index, spec, adapter, self.settings, self._clock())
                    found.append(dep)
            self._deployments[model_id] = found
        if not found:
            raise Unavailable(
                f"model {model_id!r} has no configured provider", code="model_not_available"
            )
        return found

    def context_for(
        self, entry: CatalogEntry, request_id: str, deployment_key: str | None = None
    ) -> tuple[Deployment, ProviderContext]:
        """The first healthy deployment (or the one named ``deployment_key``: a relayed task
        is polled where it was submitted) and a context for it, for front ends that relay an
        upstream's own API 1:1 (the Midjourney relay)."""
        deployments = self.deployments(entry)
        now = self._clock()
        if deployment_key is None:
            dep = next((d for d in deployments if d.ready(now)), deployments[0])
        else:
            found = [d for d in deployments if d.key == deployment_key]
            if not found:
                raise Unavailable(
                    f"{entry.spec.id!r} no longer has the deployment that runs this task",
                    code="model_not_available",
                )
            dep = found[0]
        deadline = now + dep.spec.timeout
        fetch = self._downloader.bind(dep.base_url, deadline)
        return dep, dep.context(self._http, request_id, deadline, fetch)

    def dropped_params(self, entry: CatalogEntry, request: ImageRequest) -> list[str]:
        """Parameters the preferred deployment cannot take (for ``x-imagegate-ignored-params``)."""
        dep = self.deployments(entry)[0]
        if not dep.declares:
            return []
        adapter = cast(Capabilities, dep.adapter)
        return adapter.dropped_params(request, dep.context(self._http, "", None))

    def _per_call(self, dep: Deployment, request: ImageRequest) -> int:
        if request.n == 1 or not dep.declares:
            return request.n
        adapter = cast(Capabilities, dep.adapter)
        return max(1, adapter.images_per_call(request, dep.context(self._http, "", None)))

    def _pick(self, deployments: list[Deployment], tries: _Tries) -> Deployment | None:
        now = self._clock()
        ready = [d for d in deployments if d.ready(now)]
        if not ready:
            return None
        fresh = [d for d in ready if d.key not in tries.tried] or ready
        roomy = [d for d in fresh if d.has_slot()] or fresh
        top = max(d.spec.priority for d in roomy)
        group = [d for d in roomy if d.spec.priority == top]
        if len(group) == 1:
            return group[0]
        return self._rng.choices(group, weights=[max(d.spec.weight, 1e-9) for d in group])[0]

    # -- one request ----------------------------------------------------------------------

    async def generate(
        self,
        entry: CatalogEntry,
        request: ImageRequest,
        request_id: str,
        journal: JobJournal | None = None,
    ) -> ImageResult:
        """Every image ``request`` asks for, fanned out in parts where upstreams take fewer.
        ``journal`` (a durable task's) keeps the task upstreams' jobs, so that running the
        task again polls them instead of submitting again."""
        deployments = self.deployments(entry)
        deadline = self._clock() + self.settings.deadline
        per_call = self._per_call(deployments[0], request)
        if request.n <= per_call:
            return await self._route(
                deployments, request, request_id, _Tries(deadline), journal, "0"
            )
        parts = split(request.n, per_call)
        results = await asyncio.gather(
            *(
                self._route(
                    deployments,
                    replace(request, n=n),
                    request_id,
                    _Tries(deadline),
                    journal,
                    str(part),
                )
                for part, n in enumerate(parts)
            ),
            return_exceptions=True,
        )
        return merge(results)

    async def _route(
        self,
        deployments: list[Deployment],
        request: ImageRequest,
        request_id: str,
        tries: _Tries,
        journal: JobJournal | None = None,
        part: str = "0",
    ) -> ImageResult:
        while tries.attempts < self.settings.max_attempts:
            dep = await self._next(deployments, tries)
            if dep is None:
                break
            tries.attempts += 1
            try:
                return await self._attempt(dep, request, request_id, tries.deadline, journal, part)
            except (RateLimited, UpstreamError) as exc:
                self._failed(dep, exc, tries)
        raise self._final(deployments, tries)

    async def _next(self, deployments: list[Deployment], tries: _Tries) -> Deployment | None:
        """The deployment for the next try, after any wait that is worth it; ``None``: stop."""
        while True:
            dep = self._pick(deployments, tries)
            now = self._clock()
            if dep is None:
                # Wait for a 429's hint, an rpm slot or a running probe; never for an open
                # breaker's cooldown (those are answered 503 with Retry-After at once). At
                # least a tick: a deployment whose probe is running says it is ready in 0 s.
                waits = [d.ready_in(now) for d in deployments if d.breaker.state(now) != "open"]
                if not waits:
                    return None
                wait = max(0.05, min(waits))
            elif dep.key in tries.tried:
                wait = self._backoff(tries) - (now - tries.failed_at)
            else:
                return dep
            if wait > self.settings.max_wait or now + wait >= tries.deadline:
                return None
            if wait > 0:
                await self._sleep(wait)
            if dep is not None:
                return dep

    def _backoff(self, tries: _Tries) -> float:
        ceiling = min(
            self.settings.backoff_max, self.settings.backoff_base * 2 ** (tries.attempts - 1)
        )
        delay = self._rng.uniform(ceiling / 2, ceiling)
        hint = tries.last.retry_after if tries.last is not None else None
        return max(delay, hint or 0.0)

    def _failed(self, dep: Deployment, exc: ImagegateError, tries: _Tries) -> None:
        now = self._clock()
        if isinstance(exc, RateLimited):
            dep.breaker.rate_limited(now, exc.retry_after)
        elif isinstance(exc, UpstreamRejected):
            dep.breaker.reject(now)
        else:
            dep.breaker.failure(now)
        dep.last_error = f"{exc.status} {exc.code or exc.type}: {exc.message}"[:300]
        dep.last_error_at = time.time()
        tries.tried.add(dep.key)
        tries.last = exc
        tries.failed_at = now
        log.warning(
            "%s try %d failed: %s %s (breaker %s)",
            dep.key, tries.attempts, exc.status, exc.code or exc.type, dep.breaker.state(now),
        )  # fmt: skip

    def _final(self, deployments: list[Deployment], tries: _Tries) -> ImagegateError:
        now = self._clock()
        ready_in = min(d.ready_in(now) for d in deployments)
        last = tries.last
        if isinstance(last, RateLimited):
            if ready_in > 0:
                last.retry_after = max(last.retry_after or 0.0, ready_in)
            return last
        if last is not None and not isinstance(last, Unavailable):
            return last
        message = last.message if last is not None else "every deployment is cooling down"
        return Unavailable(
            f"no healthy deployment: {message}",
            retry_after=max(1.0, ready_in or self.settings.cooldown),
            code="no_healthy_deployment",
        )

    async def _attempt(
        self,
        dep: Deployment,
        request: ImageRequest,
        request_id: str,
        deadline: float,
        journal: JobJournal | None = None,
        part: str = "0",
    ) -> ImageResult:
        attempt_deadline = min(deadline, self._clock() + dep.spec.timeout)
        fetch = self._downloader.bind(dep.base_url, attempt_deadline)
        ctx = dep.context(self._http, request_id, attempt_deadline, fetch)
        async with self._slot(dep, attempt_deadline), observed_call(dep):
            if dep.bucket is not None:
                dep.bucket.take(self._clock())
            started = self._clock()
            dep.breaker.begin(started)
            try:
                async with asyncio.timeout(max(0.001, attempt_deadline - self._clock())):
                    result = await self._call(dep, request, ctx, journal, part)
                    conformed = await conform(result, request, dep.name)
            except TimeoutError:
                raise UpstreamTimeout(
                    f"{dep.name} did not finish within the deadline", code="upstream_timeout"
                ) from None
            except ClientError as exc:
                if not isinstance(exc, RateLimited):
                    dep.breaker.success()  # the upstream is up; the request was at fault
                raise
            except BaseException as exc:
                if not isinstance(exc, UpstreamError):
                    dep.breaker.abandon()
                raise
        dep.breaker.success()
        metrics.images(dep.model_id, dep.name, len(conformed.images))
        dep.latency_ms = (self._clock() - started) * 1000
        return conformed

    @contextlib.asynccontextmanager
    async def _slot(self, dep: Deployment, deadline: float) -> AsyncIterator[None]:
        if dep.slots is None:
            yield
            return
        try:
            async with asyncio.timeout(max(0.001, deadline - self._clock())):
                await dep.slots.acquire()
        except TimeoutError:
            raise Unavailable(
                f"{dep.name} is at its concurrency limit", retry_after=1.0, code="deployment_busy"
            ) from None
        try:
            yield
        finally:
            dep.slots.release()

    async def _call(
        self,
        dep: Deployment,
        request: ImageRequest,
        ctx: ProviderContext,
        journal: JobJournal | None = None,
        part: str = "0",
    ) -> ImageResult:
        per_call = self._per_call(dep, request)
        if request.n > per_call:
            parts = await asyncio.gather(
                *(
                    self._call(dep, replace(request, n=n), ctx, journal, f"{part}.{index}")
                    for index, n in enumerate(split(request.n, per_call))
                )
            )
            return merge(list(parts))
        if dep.is_task:
            adapter = cast(TaskProvider, dep.adapter)
            return await self._tasks.run(adapter, request, ctx, journal, f"{dep.key}/{part}")
        return await cast(ImageProvider, dep.adapter).generate(request, ctx)

    # -- streaming ------------------------------------------------------------------------

    async def stream(
        self, entry: CatalogEntry, request: ImageRequest, request_id: str
    ) -> AsyncIterator[StreamEvent]:
        """Partial images, then one conformed result. Retries and failover happen only until
        the first event has been passed on."""
        deployments = self.deployments(entry)
        tries = _Tries(self._clock() + self.settings.deadline)
        while tries.attempts < self.settings.max_attempts:
            dep = await self._next(deployments, tries)
            if dep is None:
                break
            tries.attempts += 1
            started = False
            try:
                async for event in self._stream_once(dep, request, request_id, tries.deadline):
                    started = started or isinstance(event, PartialImage)
                    yield event
                return
            except (RateLimited, UpstreamError) as exc:
                self._failed(dep, exc, tries)
                if started:
                    raise
        raise self._final(deployments, tries)

    async def _stream_once(
        self, dep: Deployment, request: ImageRequest, request_id: str, deadline: float
    ) -> AsyncIterator[StreamEvent]:
        adapter = dep.adapter
        if dep.is_task or not isinstance(adapter, ImageProvider):
            yield await self._attempt(dep, request, request_id, deadline)
            return
        attempt_deadline = min(deadline, self._clock() + dep.spec.timeout)
        ctx = dep.context(
            self._http,
            request_id,
            attempt_deadline,
            self._downloader.bind(dep.base_url, attempt_deadline),
        )
        async with self._slot(dep, attempt_deadline), observed_call(dep, current=False):
            dep.breaker.begin(self._clock())
            try:
                async for event in adapter.stream(request, ctx):
                    if isinstance(event, ImageResult):
                        event = await conform(event, request, dep.name)
                        dep.breaker.success()
                        metrics.images(dep.model_id, dep.name, len(event.images))
                        yield event
                        return
                    yield event
            except BaseException as exc:
                if not isinstance(exc, UpstreamError | RateLimited):
                    dep.breaker.abandon()
                raise
        raise UpstreamError(
            f"{dep.name}'s stream ended without a final image", code="upstream_bad_response"
        )
