"""Partial images of running tasks, handed in process from the worker drawing them to the
clients watching that task's events.

Partial images are previews, not results: they are never stored, so a watcher served by another
process than the one running the task sees progress and the final result only."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager

from imagegate.core.requests import PartialImage

QUEUE_SIZE = 8
"""Previews a slow watcher may fall behind by; later ones are dropped for it (never blocking
the worker)."""


class PartialImages:
    """Who watches which task, and the previews its worker publishes to them."""

    def __init__(self) -> None:
        self._watchers: dict[str, set[asyncio.Queue[PartialImage]]] = {}

    @contextmanager
    def watch(self, task_id: str) -> Iterator[asyncio.Queue[PartialImage]]:
        """A queue receiving ``task_id``'s previews while the context is open."""
        queue: asyncio.Queue[PartialImage] = asyncio.Queue(QUEUE_SIZE)
        self._watchers.setdefault(task_id, set()).add(queue)
        try:
            yield queue
        finally:
            watchers = self._watchers.get(task_id, set())
            watchers.discard(queue)
            if not watchers:
                self._watchers.pop(task_id, None)

    def publish(self, task_id: str, partial: PartialImage) -> None:
        for queue in self._watchers.get(task_id, ()):
            if not queue.full():
                queue.put_nowait(partial)
