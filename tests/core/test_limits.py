"""Token buckets in memory and in Redis behave the same; concurrency slots queue, then refuse."""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError

from imagegate.core.limits import ConcurrencyLimiter, MemoryRateLimiter, RateLimiter
from imagegate.core.redis_limits import RedisRateLimiter
from imagegate.errors import RateLimited

REDIS_URL = os.environ.get("IMAGEGATE_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


@pytest.fixture(params=["memory", "redis"])
async def limiter(request: pytest.FixtureRequest) -> AsyncIterator[RateLimiter]:
    if request.param == "memory":
        yield MemoryRateLimiter()
        return
    client = Redis.from_url(REDIS_URL)
    try:
        await client.ping()
    except (RedisConnectionError, OSError):
        await client.aclose()
        if os.environ.get("CI") == "true":
            pytest.fail(f"Redis is required in CI but {REDIS_URL} is unreachable")
        pytest.skip("Redis is not reachable")
    redis_limiter = RedisRateLimiter(client, prefix=f"test:{secrets.token_hex(4)}:")
    yield redis_limiter
    await redis_limiter.close()


async def test_a_bucket_allows_its_limit_then_refuses(limiter: RateLimiter) -> None:
    decisions = [await limiter.hit("k", 1, 3, 60) for _ in range(4)]
    assert [d.allowed for d in decisions] == [True, True, True, False]
    assert decisions[2].remaining == pytest.approx(0, abs=0.01)
    assert decisions[3].reset_seconds == pytest.approx(20, abs=0.5)


async def test_buckets_refill_over_their_window(limiter: RateLimiter) -> None:
    assert (await limiter.hit("fast", 2, 2, 0.2)).allowed
    assert not (await limiter.hit("fast", 1, 2, 0.2)).allowed
    await asyncio.sleep(0.15)
    assert (await limiter.hit("fast", 1, 2, 0.2)).allowed


async def test_more_than_the_limit_at_once_is_never_allowed(limiter: RateLimiter) -> None:
    decision = await limiter.hit("big", 5, 3, 60)
    assert not decision.allowed and decision.reset_seconds == 60


async def test_buckets_are_separate(limiter: RateLimiter) -> None:
    assert (await limiter.hit("a", 1, 1, 60)).allowed
    assert (await limiter.hit("b", 1, 1, 60)).allowed
    assert not (await limiter.hit("a", 1, 1, 60)).allowed


async def test_two_redis_limiters_share_one_bucket() -> None:
    client = Redis.from_url(REDIS_URL)
    try:
        await client.ping()
    except (RedisConnectionError, OSError):
        await client.aclose()
        if os.environ.get("CI") == "true":
            pytest.fail("Redis is required in CI")
        pytest.skip("Redis is not reachable")
    prefix = f"test:{secrets.token_hex(4)}:"
    replicas = [RedisRateLimiter(client, prefix=prefix), RedisRateLimiter(client, prefix=prefix)]
    results = await asyncio.gather(*(replicas[i % 2].hit("shared", 1, 10, 60) for i in range(30)))
    assert sum(d.allowed for d in results) == 10
    await client.aclose()


async def test_concurrency_slots_pass_to_the_next_waiter() -> None:
    slots = ConcurrencyLimiter(queue_seconds=0.5)
    await slots.acquire("k", 1)
    waiter = asyncio.create_task(slots.acquire("k", 1))
    await asyncio.sleep(0.05)
    assert not waiter.done()
    slots.release("k")
    await waiter
    with pytest.raises(RateLimited):
        await ConcurrencyLimiter(queue_seconds=0.05).acquire("x", 0)
    slots.release("k")
    await slots.acquire("k", 1)
