"""Rate limits that survive a Redis outage: the shared limiter behind a circuit breaker that
falls back to this process's own buckets.

Decision (see the README's "Failure modes"): fail open. A rate limit protects the upstreams and
the bill, and the bill is guarded by the database (credit holds), not by Redis; refusing every
request while Redis is down would turn a degraded limiter into a full outage. So when a Redis
call fails or takes longer than ``timeout`` the breaker opens for ``cooldown`` seconds, and
meanwhile every hit is counted by a per-process :class:`MemoryRateLimiter` (each replica then
enforces the limits on its own: with N replicas a key may get up to N times its rate). Each
opening is logged; :attr:`FallbackRateLimiter.fallbacks` counts the hits served that way, and
``/readyz`` reports the limiter as degraded (it stays 200: the replica serves)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from redis.exceptions import RedisError

from imagegate.aio import within
from imagegate.core.limits import Decision, MemoryRateLimiter, RateLimiter

log = logging.getLogger("imagegate.limits")

TIMEOUT_SECONDS = 0.25
COOLDOWN_SECONDS = 5.0


class FallbackRateLimiter:
    """``shared`` while it answers within ``timeout``; ``local`` for ``cooldown`` seconds after
    it failed."""

    def __init__(
        self,
        shared: RateLimiter,
        *,
        local: RateLimiter | None = None,
        timeout: float = TIMEOUT_SECONDS,
        cooldown: float = COOLDOWN_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._shared = shared
        self._local = local or MemoryRateLimiter()
        self._timeout = timeout
        self._cooldown = cooldown
        self._clock = clock
        self.retry_at = 0.0
        """When the shared limiter is tried again (0: it is in use)."""
        self.fallbacks = 0
        """Hits counted by the local limiter because the shared one was unavailable."""

    @property
    def degraded(self) -> bool:
        return self.retry_at > self._clock()

    async def hit(self, bucket: str, amount: float, limit: float, window: float) -> Decision:
        if not self.degraded:
            try:
                decision = await within(
                    self._shared.hit(bucket, amount, limit, window), self._timeout
                )
            except (RedisError, OSError, TimeoutError) as exc:
                self._open(exc)
            else:
                self.retry_at = 0.0
                return decision
        self.fallbacks += 1
        return await self._local.hit(bucket, amount, limit, window)

    def _open(self, exc: BaseException) -> None:
        self.retry_at = self._clock() + self._cooldown
        log.warning(
            "shared rate limiter unavailable (%s); limiting per process for %g s",
            type(exc).__name__,
            self._cooldown,
        )

    async def close(self) -> None:
        try:
            await self._shared.close()
        finally:
            await self._local.close()
