"""Single-flight loads: concurrent callers that miss a cache for the same key share one read.

When a cached entry expires under load, every request in flight misses it at once; without
this each would run its own database read (and, beyond the pool's size, open a connection of
its own). :class:`SingleFlight` runs the first caller's load as a task and lets the others
await the same task. A caller that is cancelled stops waiting; the load goes on for the others.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class SingleFlight(Generic[K, V]):
    """At most one load per key at a time; callers for a key being loaded share its result
    (or its exception)."""

    __slots__ = ("_loading",)

    def __init__(self) -> None:
        self._loading: dict[K, asyncio.Task[V]] = {}

    async def load(self, key: K, load: Callable[[], Awaitable[V]]) -> V:
        """The result of ``load()``, run once for all callers of ``key`` meanwhile."""
        task = self._loading.get(key)
        if task is None:
            task = asyncio.ensure_future(load())
            self._loading[key] = task
            task.add_done_callback(lambda done: self._done(key, done))
        return await asyncio.shield(task)

    def current(self, key: K, task: asyncio.Task[V] | None) -> bool:
        """Whether ``task`` is still the load of ``key`` (not dropped by :meth:`forget`)."""
        return task is not None and self._loading.get(key) is task

    def forget(self, key: K | None = None) -> None:
        """Later callers of ``key`` (of every key when None) start a new load; loads already
        running finish for the callers waiting on them."""
        if key is None:
            self._loading.clear()
        else:
            self._loading.pop(key, None)

    def _done(self, key: K, task: asyncio.Task[V]) -> None:
        if self._loading.get(key) is task:
            del self._loading[key]
        if not task.cancelled():
            task.exception()  # retrieved: every waiter may have gone meanwhile
