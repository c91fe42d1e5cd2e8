"""Pacing: how many requests may start a burst of CPU work in one event-loop iteration.

A coroutine runs without a break until it awaits something not yet done. A request's work
before its upstream call (auth, validation, pricing, the request sent) and after it (the
answer parsed, images stored, the reply rendered) are such runs, ~0.3 ms each; when a thousand
requests arrive or a thousand upstream answers land together, one loop iteration would run them
all back to back and stall everything else (health checks, timers, other clients) for a third
of a second. :class:`Pacer` lets ``per_tick`` of them through per iteration and queues the rest
(first come, first served), so an iteration stays a few milliseconds long under any burst.

One pacer per process, shared by the places where such runs begin: a hot route's request
(``fronts.http.direct``), an upstream answer (``UpstreamClient``) and a committed batch's callers
(``GroupCommit``).
"""

from __future__ import annotations

import asyncio
from collections import deque

DEFAULT_PER_TICK = 8


class Pacer:
    """``await pacer.turn()`` before a burst of CPU work; free when the loop is not busy."""

    def __init__(self, per_tick: int = DEFAULT_PER_TICK) -> None:
        self._per_tick = per_tick
        self._passed = 0
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._tick_scheduled = False
        self._loop: asyncio.AbstractEventLoop | None = None

    async def turn(self) -> None:
        loop = asyncio.get_running_loop()
        if loop is not self._loop:  # a new loop: the old one's tick and waiters are gone
            self._loop, self._passed, self._tick_scheduled = loop, 0, False
            self._waiters.clear()
        if not self._waiters and self._passed < self._per_tick:
            self._passed += 1
            self._schedule_tick(loop)
            return
        waiter = loop.create_future()
        self._waiters.append(waiter)
        self._schedule_tick(loop)
        await waiter

    def _schedule_tick(self, loop: asyncio.AbstractEventLoop) -> None:
        if not self._tick_scheduled:
            self._tick_scheduled = True
            loop.call_soon(self._tick, loop)

    def _tick(self, loop: asyncio.AbstractEventLoop) -> None:
        """Runs once per iteration while there is work: a new allowance, given to waiters."""
        self._tick_scheduled = False
        self._passed = 0
        while self._waiters and self._passed < self._per_tick:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                self._passed += 1
        if self._waiters or self._passed:
            self._schedule_tick(loop)
