"""The process-wide budget of decoded pixels: it bounds what is held at once, serves waiters in
order, refuses with a 429 after its wait, and never loses pixels to cancellation."""

from __future__ import annotations

import asyncio

import pytest

from imagegate.errors import RateLimited
from imagegate.imaging.budget import DecodeBudget, release_memory


async def test_reservations_beyond_the_budget_wait_for_a_release() -> None:
    budget = DecodeBudget(100, max_wait=5)
    entered: list[str] = []
    gate = asyncio.Event()

    async def use(name: str, pixels: int) -> None:
        async with budget.hold(pixels):
            entered.append(name)
            assert budget.held <= 100
            await gate.wait()

    first = asyncio.create_task(use("first", 60))
    await asyncio.sleep(0.01)
    second = asyncio.create_task(use("second", 60))
    await asyncio.sleep(0.01)
    assert entered == ["first"] and budget.held == 60
    gate.set()
    await asyncio.gather(first, second)
    assert entered == ["first", "second"] and budget.held == 0


async def test_one_reservation_larger_than_the_budget_runs_alone() -> None:
    budget = DecodeBudget(10, max_wait=5)
    async with budget.hold(50):
        assert budget.held == 50
    assert budget.held == 0


async def test_a_wait_longer_than_allowed_is_a_429_with_retry_after() -> None:
    budget = DecodeBudget(10, max_wait=0.05)
    async with budget.hold(10):
        with pytest.raises(RateLimited) as refused:
            async with budget.hold(5, param="image"):
                pass
    assert refused.value.status == 429 and refused.value.param == "image"
    assert refused.value.retry_after is not None and refused.value.retry_after >= 1
    assert budget.held == 0


async def test_a_cancelled_waiter_gives_nothing_away_and_blocks_no_one() -> None:
    budget = DecodeBudget(10, max_wait=5)
    async with budget.hold(10):
        waiter = asyncio.create_task(budget.hold(10).__aenter__())
        await asyncio.sleep(0.01)
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
    assert budget.held == 0
    async with budget.hold(10):
        assert budget.held == 10


async def test_waiters_from_worker_threads_are_woken() -> None:
    budget = DecodeBudget(10, max_wait=5)

    def in_another_loop() -> int:
        async def use() -> int:
            async with budget.hold(10):
                return budget.held

        return asyncio.run(use())

    async with budget.hold(10):
        other = asyncio.create_task(asyncio.to_thread(in_another_loop))
        await asyncio.sleep(0.05)
        assert not other.done()
    assert await other == 10
    assert budget.held == 0


def test_release_memory_is_safe_to_call() -> None:
    release_memory()


async def test_patient_work_waits_past_the_limit_instead_of_a_429() -> None:
    budget = DecodeBudget(10, max_wait=0.01)
    release = asyncio.Event()

    async def holder() -> None:
        async with budget.hold(10):
            await release.wait()

    held = asyncio.create_task(holder())
    await asyncio.sleep(0.01)
    patient = asyncio.create_task(budget.hold(10, patient=True).__aenter__())
    await asyncio.sleep(0.1)
    assert not patient.done()
    release.set()
    await held
    await patient
    assert budget.held == 10
