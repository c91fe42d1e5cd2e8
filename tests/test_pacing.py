"""The pacer: at most ``per_tick`` turns per event-loop iteration, first come first served."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from imagegate.pacing import Pacer


def iteration_counter() -> Callable[[], int]:
    """How many event-loop iterations have run since this was called."""
    loop = asyncio.get_running_loop()
    count = [0]

    def tick() -> None:
        count[0] += 1
        loop.call_soon(tick)

    loop.call_soon(tick)
    return lambda: count[0]


async def test_turns_within_the_allowance_do_not_suspend() -> None:
    pacer = Pacer(per_tick=4)
    now = iteration_counter()
    for _ in range(4):
        await pacer.turn()
    assert now() == 0


async def test_a_burst_is_spread_over_iterations_in_arrival_order() -> None:
    pacer = Pacer(per_tick=3)
    now = iteration_counter()
    order: list[int] = []
    at: list[int] = []

    async def worker(number: int) -> None:
        await pacer.turn()
        order.append(number)
        at.append(now())

    await asyncio.gather(*(worker(i) for i in range(20)))

    assert order == list(range(20))
    per_iteration = {iteration: at.count(iteration) for iteration in at}
    assert max(per_iteration.values()) <= 3
    assert len(per_iteration) >= 7


async def test_a_cancelled_waiter_does_not_hold_up_the_others() -> None:
    pacer = Pacer(per_tick=1)
    passes, cancelled, waits = (asyncio.create_task(pacer.turn()) for _ in range(3))
    await asyncio.sleep(0)  # all three have asked: the first passed, two wait
    assert passes.done() and not cancelled.done() and not waits.done()
    cancelled.cancel()
    await asyncio.wait_for(waits, 1)
    assert cancelled.cancelled()


def test_a_pacer_outlives_its_event_loop() -> None:
    pacer = Pacer(per_tick=1)

    async def burst() -> None:
        await asyncio.gather(*(pacer.turn() for _ in range(5)))

    asyncio.run(burst())
    asyncio.run(asyncio.wait_for(burst(), 1))
