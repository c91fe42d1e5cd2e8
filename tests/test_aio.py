"""``wait_set``: a timed event wait whose cancellation is never lost."""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import Awaitable, Callable

import pytest

from imagegate.aio import wait_set


async def _wait_for_set(event: asyncio.Event, seconds: float) -> bool:
    """What the package did before: asyncio.wait_for, which loses the race on Python 3.11."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(event.wait(), seconds)
    return event.is_set()


async def _a_loop_cancelled_as_it_is_woken(wait: Callable[..., Awaitable[bool]]) -> bool:
    """Whether a wake-and-wait loop stops when its wake and its cancel land together."""
    event = asyncio.Event()

    async def loop() -> None:
        while True:
            await wait(event, 10)
            event.clear()

    task = asyncio.create_task(loop())
    for _ in range(3):  # the loop and whatever it waits through are all waiting now
        await asyncio.sleep(0)
    event.set()
    task.cancel()
    await asyncio.wait({task}, timeout=0.5)  # not awaiting it: that would cancel it again
    stopped = task.done()
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    return stopped


async def test_a_cancel_that_lands_with_the_wake_stops_the_loop() -> None:
    assert await _a_loop_cancelled_as_it_is_woken(wait_set)


@pytest.mark.skipif(
    sys.version_info >= (3, 12),
    reason="the race is fixed in asyncio.wait_for from Python 3.12",
)
async def test_the_race_is_real_with_wait_for() -> None:
    assert not await _a_loop_cancelled_as_it_is_woken(_wait_for_set)


async def test_it_says_whether_the_event_came() -> None:
    event = asyncio.Event()
    assert not await wait_set(event, 0.01)
    asyncio.get_running_loop().call_later(0.01, event.set)
    assert await wait_set(event, 5)
