"""Rate and concurrency limits per key, in memory for one process.

:class:`RateLimiter` is the interface a shared (Redis) backend implements for several replicas;
:class:`MemoryRateLimiter` keeps token buckets in this process.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from imagegate.aio import within
from imagegate.errors import RateLimited


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    limit: float
    remaining: float
    reset_seconds: float
    """Seconds until the bucket is full again (allowed) or until the request would fit."""


class RateLimiter(Protocol):
    """Counts ``amount`` against ``limit`` per ``window`` seconds for ``bucket``."""

    async def hit(self, bucket: str, amount: float, limit: float, window: float) -> Decision: ...

    async def close(self) -> None: ...


@dataclass(slots=True)
class _Bucket:
    tokens: float
    updated: float


class MemoryRateLimiter:
    """Token buckets: ``limit`` tokens refilled evenly over ``window`` seconds."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._buckets: dict[str, _Bucket] = {}

    async def hit(self, bucket: str, amount: float, limit: float, window: float) -> Decision:
        now = self._clock()
        rate = limit / window
        state = self._buckets.get(bucket)
        if state is None:
            state = self._buckets[bucket] = _Bucket(limit, now)
        state.tokens = min(limit, state.tokens + (now - state.updated) * rate)
        state.updated = now
        if amount > limit or state.tokens < amount:
            wait = (amount - state.tokens) / rate if amount <= limit else window
            return Decision(False, limit, state.tokens, wait)
        state.tokens -= amount
        return Decision(True, limit, state.tokens, (limit - state.tokens) / rate)

    async def close(self) -> None:
        """Nothing to close (buckets live in this process)."""


def rate_limited(decision: Decision, what: str) -> RateLimited:
    return RateLimited(
        f"rate limit reached: {what} (limit {decision.limit:g}); retry after "
        f"{math.ceil(decision.reset_seconds)} s",
        retry_after=max(1.0, decision.reset_seconds),
    )


@dataclass(slots=True)
class _Slots:
    active: int = 0
    waiters: list[asyncio.Future[None]] = field(default_factory=list)


class ConcurrencyLimiter:
    """At most ``limit`` requests in flight per key; a new one waits up to ``queue_seconds`` for
    a slot, then gets a 429."""

    def __init__(self, queue_seconds: float = 2.0) -> None:
        self._queue_seconds = queue_seconds
        self._slots: dict[str, _Slots] = {}

    async def acquire(self, key_id: str, limit: int) -> None:
        slots = self._slots.setdefault(key_id, _Slots())
        if slots.active < limit and not slots.waiters:
            slots.active += 1
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        slots.waiters.append(waiter)
        try:
            await within(asyncio.shield(waiter), self._queue_seconds)
        except TimeoutError:
            if waiter.done():  # a slot arrived just as the wait ended: take it
                return
            slots.waiters.remove(waiter)
            waiter.cancel()
            raise RateLimited(
                f"too many concurrent requests for this key (limit {limit})", retry_after=1
            ) from None

    def release(self, key_id: str) -> None:
        slots = self._slots[key_id]
        while slots.waiters:
            waiter = slots.waiters.pop(0)
            if not waiter.done():
                waiter.set_result(None)  # the slot passes straight to the next in line
                return
        slots.active -= 1
        if not slots.active:
            del self._slots[key_id]
