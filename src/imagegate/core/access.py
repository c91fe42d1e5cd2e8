"""Admission: may this key make this request now? Expiry, route allow-lists, requests per
minute, concurrency, images per minute and megapixels per day — each refusal a clear 401/403/429
with the rate-limit headers clients use to back off."""

from __future__ import annotations

import asyncio
import fnmatch
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from imagegate.core.billing import Billing, KeyLimits
from imagegate.core.keys import ApiKey
from imagegate.core.limits import ConcurrencyLimiter, Decision, RateLimiter, rate_limited
from imagegate.core.single_flight import SingleFlight
from imagegate.errors import AuthenticationFailed, PermissionDenied

CACHE_SECONDS = 5.0


@dataclass(slots=True)
class Admission:
    """A request let in: the headers to send back and what to release when it ends."""

    headers: dict[str, str] = field(default_factory=dict)
    release: Callable[[], None] | None = None


def ratelimit_headers(decision: Decision) -> dict[str, str]:
    return {
        "x-ratelimit-limit-requests": str(int(decision.limit)),
        "x-ratelimit-remaining-requests": str(max(0, math.floor(decision.remaining))),
        "x-ratelimit-reset-requests": f"{max(0.0, decision.reset_seconds):.3f}s",
    }


class AccessControl:
    """Applies a key's limits; limits are cached for a few seconds (updates here drop the cache).
    Requests that miss the cache for a key together share one read."""

    def __init__(
        self,
        billing: Billing,
        rate: RateLimiter,
        concurrency: ConcurrencyLimiter,
        *,
        default_rpm: int,
    ) -> None:
        self._billing = billing
        self._rate = rate
        self._concurrency = concurrency
        self._default_rpm = default_rpm
        self._cache: dict[str, tuple[KeyLimits, float]] = {}
        self._reads: SingleFlight[str, KeyLimits] = SingleFlight()

    async def limits(self, key: ApiKey) -> KeyLimits:
        return await self.limits_of(key.id)

    async def limits_of(self, key_id: str) -> KeyLimits:
        cached = self._cache.get(key_id)
        now = time.monotonic()
        if cached is not None and now - cached[1] < CACHE_SECONDS:
            return cached[0]
        return await self._reads.load(key_id, lambda: self._read(key_id, now))

    async def _read(self, key_id: str, now: float) -> KeyLimits:
        limits = await self._billing.limits(key_id)
        if self._reads.current(key_id, asyncio.current_task()):
            self._cache[key_id] = (limits, now)  # not when forgotten while it was read
        return limits

    def forget(self, key_id: str) -> None:
        self._cache.pop(key_id, None)
        self._reads.forget(key_id)

    async def admit(self, key: ApiKey, route: str) -> Admission:
        """Let a request in or raise; the caller must call ``release`` when it ends."""
        limits = await self.limits(key)
        if limits.expires_at is not None and limits.expires_at <= time.time():
            raise AuthenticationFailed("this API key has expired", code="key_expired")
        if limits.routes is not None and not any(
            fnmatch.fnmatchcase(route, glob) for glob in limits.routes
        ):
            raise PermissionDenied(f"this key may not use {route}", code="route_not_allowed")
        rpm = limits.rpm or self._default_rpm
        decision = await self._rate.hit(f"rpm:{key.id}", 1, rpm, 60)
        headers = ratelimit_headers(decision)
        if not decision.allowed:
            error = rate_limited(decision, "requests per minute")
            error.headers = headers
            raise error
        if limits.max_concurrent is None:
            return Admission(headers)
        await self._concurrency.acquire(key.id, limits.max_concurrent)
        return Admission(headers, lambda: self._concurrency.release(key.id))

    async def check_images(self, key: ApiKey, images: int, megapixels: float) -> None:
        """Count the images a request asks for against the key's per-minute and daily limits."""
        limits = await self.limits(key)
        if limits.images_per_minute is not None:
            decision = await self._rate.hit(f"ipm:{key.id}", images, limits.images_per_minute, 60)
            if not decision.allowed:
                raise rate_limited(decision, "images per minute")
        if limits.megapixels_per_day is not None:
            decision = await self._rate.hit(
                f"mpd:{key.id}", megapixels, limits.megapixels_per_day, 86400
            )
            if not decision.allowed:
                raise rate_limited(decision, "megapixels per day")
