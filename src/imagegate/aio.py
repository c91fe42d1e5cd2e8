"""Small asyncio helpers that the standard library gets subtly wrong on Python 3.11.

``asyncio.wait_for`` there drops a cancellation that arrives in the same loop iteration as the
awaited result (CPython gh-86296, fixed in 3.12), so a background loop woken by an event as it was
being cancelled kept running forever and its owner's ``close()`` hung. ``asyncio.timeout`` counts
cancellations and has no such race; every timed wait in the package goes through it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable
from typing import TypeVar

T = TypeVar("T")


async def within(awaitable: Awaitable[T], seconds: float) -> T:
    """``await awaitable``, or :class:`TimeoutError` after ``seconds`` (``wait_for`` without
    its lost cancellations)."""
    async with asyncio.timeout(seconds):
        return await awaitable


async def wait_set(event: asyncio.Event, seconds: float) -> bool:
    """Whether ``event`` was set within ``seconds``; a cancellation always propagates."""
    with contextlib.suppress(TimeoutError):
        await within(event.wait(), seconds)
    return event.is_set()
