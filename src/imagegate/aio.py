"""Small asyncio helpers that the standard library gets subtly wrong on Python 3.11.

``asyncio.wait_for`` there drops a cancellation that arrives in the same loop iteration as the
awaited result (CPython gh-86296, fixed in 3.12), so a background loop woken by an event as it was
being cancelled kept running forever and its owner's ``close()`` hung. ``asyncio.timeout`` counts
cancellations and has no such race; every timed wait in the package goes through it.
"""

from __future__ import annotations

import asyncio
import contextlib


async def wait_set(event: asyncio.Event, seconds: float) -> bool:
    """Whether ``event`` was set within ``seconds``; a cancellation always propagates."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            await event.wait()
    return event.is_set()
