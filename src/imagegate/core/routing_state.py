"""What the router remembers about each deployment: health (a circuit breaker), its request
rate, its concurrency slots, and how to build an adapter's context for it.

Boundary: plain in-process state, one :class:`Deployment` per (model, deployment) for the life
of the process; no I/O except reading the deployment's environment variables once, when it is
first used. Times are :func:`time.monotonic` seconds (injected, so tests drive a fake clock).

The breaker: *closed* while consecutive failures stay under the threshold; then *open* for a
cooldown (no calls); then *half-open*: exactly one live request goes through as a recovery
probe. A probe that succeeds closes the breaker; one that fails re-opens it with twice the
cooldown (up to a maximum). An upstream 429 blocks the deployment for its ``retry-after``
without counting as a failure; a refusal of the deployment's credentials opens the breaker for
the longest cooldown at once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any, Literal

from imagegate.core.catalog import DeploymentSpec, base_url_of
from imagegate.core.upstream import (
    Capabilities,
    ImageProvider,
    ProviderContext,
    ResultFetch,
    TaskProvider,
    UpstreamHttp,
    read_credentials,
)
from imagegate.observability import metrics

__all__ = ["Breaker", "Deployment", "RateBucket", "RouterSettings"]

BreakerState = Literal["closed", "open", "half-open"]


@dataclass(frozen=True, slots=True)
class RouterSettings:
    """How hard the router tries. Defaults suit real upstreams; tests shorten the waits."""

    max_attempts: int = 3
    """Upstream calls per request (per fanned-out part), failovers included."""
    backoff_base: float = 0.5
    backoff_max: float = 8.0
    max_wait: float = 30.0
    """The longest single wait (a ``retry-after``, a cooldown) before giving up instead."""
    failure_threshold: int = 3
    cooldown: float = 10.0
    cooldown_max: float = 300.0
    deadline: float = 600.0
    """The whole request, every retry and poll included."""
    poll_errors: int = 3
    """Consecutive transient failures of a task's polls tolerated before the try fails."""


class Breaker:
    """A circuit breaker with half-open recovery probes (see the module docstring)."""

    __slots__ = (
        "blocked_until",
        "cooldown",
        "failures",
        "on_cooldown",
        "open_until",
        "probing",
        "settings",
    )

    def __init__(
        self, settings: RouterSettings, on_cooldown: Callable[[float], None] | None = None
    ) -> None:
        self.settings = settings
        self.failures = 0
        self.open_until = 0.0
        self.blocked_until = 0.0
        self.cooldown = settings.cooldown
        self.probing = False
        self.on_cooldown = on_cooldown
        """Told the cooldown each time the breaker opens, and 0 when it closes (metrics)."""

    def state(self, now: float) -> BreakerState:
        if self.failures < self.settings.failure_threshold:
            return "closed"
        return "open" if now < self.open_until else "half-open"

    def ready(self, now: float) -> bool:
        """Whether a request may go to this deployment now."""
        if now < self.blocked_until:
            return False
        state = self.state(now)
        return state == "closed" or (state == "half-open" and not self.probing)

    def ready_in(self, now: float) -> float:
        """Seconds until :meth:`ready` may turn true (0 when it is)."""
        waits = [self.blocked_until - now]
        if self.state(now) == "open":
            waits.append(self.open_until - now)
        return max(0.0, *waits)

    def begin(self, now: float) -> bool:
        """A call starts; returns whether it is the recovery probe."""
        if self.state(now) == "half-open":
            self.probing = True
            return True
        return False

    def success(self) -> None:
        if self.failures >= self.settings.failure_threshold and self.on_cooldown is not None:
            self.on_cooldown(0.0)
        self.failures = 0
        self.probing = False
        self.cooldown = self.settings.cooldown

    def failure(self, now: float) -> None:
        if self.probing:
            self.cooldown = min(self.cooldown * 2, self.settings.cooldown_max)
        self.probing = False
        self.failures += 1
        if self.failures >= self.settings.failure_threshold:
            self._open(now)

    def reject(self, now: float) -> None:
        """The upstream refused our credentials or configuration: keep away for long."""
        self.probing = False
        self.failures = max(self.failures, self.settings.failure_threshold)
        self.cooldown = self.settings.cooldown_max
        self._open(now)

    def _open(self, now: float) -> None:
        self.open_until = now + self.cooldown
        if self.on_cooldown is not None:
            self.on_cooldown(self.cooldown)

    def rate_limited(self, now: float, retry_after: float | None) -> None:
        if self.probing:
            self.probing = False
        self.blocked_until = max(self.blocked_until, now + (retry_after or 1.0))

    def abandon(self) -> None:
        """The call was cancelled before it said anything about the upstream's health."""
        self.probing = False


class RateBucket:
    """A token bucket for a deployment's ``rpm``: ``rpm`` tokens, refilled evenly."""

    __slots__ = ("capacity", "rate", "tokens", "updated")

    def __init__(self, rpm: int, now: float) -> None:
        self.capacity = float(rpm)
        self.rate = rpm / 60.0
        self.tokens = float(rpm)
        self.updated = now

    def _refill(self, now: float) -> None:
        self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
        self.updated = now

    def ready_in(self, now: float) -> float:
        self._refill(now)
        return 0.0 if self.tokens >= 1 else (1 - self.tokens) / self.rate

    def take(self, now: float) -> None:
        self._refill(now)
        self.tokens -= 1


class Deployment:
    """One deployment of one model, with the state the router keeps for it."""

    __slots__ = (
        "adapter",
        "base_url",
        "breaker",
        "bucket",
        "credentials",
        "declares",
        "index",
        "is_task",
        "key",
        "last_error",
        "last_error_at",
        "latency_ms",
        "options",
        "slots",
        "spec",
    )

    def __init__(
        self,
        key: str,
        index: int,
        spec: DeploymentSpec,
        adapter: ImageProvider | TaskProvider,
        settings: RouterSettings,
        now: float,
    ) -> None:
        self.key = key
        self.index = index
        self.spec = spec
        self.adapter = adapter
        self.is_task = isinstance(adapter, TaskProvider) and not isinstance(adapter, ImageProvider)
        self.declares = isinstance(adapter, Capabilities)
        """Whether the adapter says how many images a call takes and what it cannot take."""
        self.credentials = read_credentials(spec.credentials)
        # The environment variable redirects (to a proxy, a fake): it wins over the default.
        self.base_url = base_url_of(spec)
        self.options: Mapping[str, Any] = dict(spec.options)
        self.breaker = Breaker(settings, partial(metrics.cooldown, key))
        self.bucket = RateBucket(spec.rpm, now) if spec.rpm else None
        self.slots = asyncio.Semaphore(spec.max_concurrency) if spec.max_concurrency else None
        self.last_error: str | None = None
        self.last_error_at: float | None = None
        """Wall-clock seconds (shown to operators; the breaker runs on the router's clock)."""
        self.latency_ms: float | None = None
        """The last successful call's duration."""

    @property
    def name(self) -> str:
        return self.adapter.name

    @property
    def model_id(self) -> str:
        """The catalogue model this deployment serves (``key`` is ``model#index:provider``)."""
        return self.key.partition("#")[0]

    def ready_in(self, now: float) -> float:
        wait = self.breaker.ready_in(now)
        if self.bucket is not None:
            wait = max(wait, self.bucket.ready_in(now))
        return wait

    def ready(self, now: float) -> bool:
        return self.breaker.ready(now) and (self.bucket is None or self.bucket.ready_in(now) == 0)

    def has_slot(self) -> bool:
        return self.slots is None or not self.slots.locked()

    def context(
        self,
        http: UpstreamHttp | None,
        request_id: str,
        deadline: float | None,
        fetch: ResultFetch | None = None,
    ) -> ProviderContext:
        return ProviderContext(
            http=http,
            request_id=request_id,
            upstream_model=self.spec.model,
            deadline=deadline,
            credentials=self.credentials,
            base_url=self.base_url,
            options=self.options,
            fetch=fetch,
        )
