"""core.access on its own: expiry, route allow-lists, requests per minute, concurrency, image
quotas and the few-second cache of a key's limits, with an in-memory billing behind it."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest

from imagegate.core import access
from imagegate.core.access import CACHE_SECONDS, AccessControl, ratelimit_headers
from imagegate.core.billing import Billing, KeyLimits
from imagegate.core.keys import ApiKey
from imagegate.core.limits import ConcurrencyLimiter, Decision, MemoryRateLimiter
from imagegate.errors import AuthenticationFailed, PermissionDenied, RateLimited

ROUTE = "/v1/images/generations"


class FakeBilling(Billing):
    """Only :meth:`Billing.limits`, from a dict; counts the reads (the database round trips)."""

    def __init__(self, *limits: KeyLimits) -> None:
        self.by_key = {limit.key_id: limit for limit in limits}
        self.reads: list[str] = []

    async def limits(self, key_id: str) -> KeyLimits:
        self.reads.append(key_id)
        return self.by_key.get(key_id, KeyLimits(key_id))


class CountingRate(MemoryRateLimiter):
    """The in-memory token buckets, with every hit remembered."""

    def __init__(self) -> None:
        super().__init__()
        self.hits: list[tuple[str, float, float, float]] = []

    async def hit(self, bucket: str, amount: float, limit: float, window: float) -> Decision:
        self.hits.append((bucket, amount, limit, window))
        return await super().hit(bucket, amount, limit, window)


class Clock:
    """Stands in for the ``time`` module inside core.access: wall and monotonic time."""

    def __init__(self) -> None:
        self.now = 1_000_000.0

    def time(self) -> float:
        return self.now

    def monotonic(self) -> float:
        return self.now


def key(key_id: str = "key_1") -> ApiKey:
    return ApiKey(id=key_id, name=key_id, prefix="ig-x", models=None, is_admin=False, created_at=0)


def control(
    *limits: KeyLimits, default_rpm: int = 100, queue_seconds: float = 0.05
) -> tuple[AccessControl, FakeBilling, CountingRate]:
    billing = FakeBilling(*limits)
    rate = CountingRate()
    gate = AccessControl(billing, rate, ConcurrencyLimiter(queue_seconds), default_rpm=default_rpm)
    return gate, billing, rate


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(access, "time", fake)
    return fake


def test_ratelimit_headers_round_down_and_never_go_negative() -> None:
    assert ratelimit_headers(Decision(True, 60, 12.9, 0.25)) == {
        "x-ratelimit-limit-requests": "60",
        "x-ratelimit-remaining-requests": "12",
        "x-ratelimit-reset-requests": "0.250s",
    }
    headers = ratelimit_headers(Decision(False, 5, -0.5, -1.0))
    assert headers["x-ratelimit-remaining-requests"] == "0"
    assert headers["x-ratelimit-reset-requests"] == "0.000s"


async def test_a_key_without_limits_gets_the_default_rpm_and_nothing_to_release() -> None:
    gate, _, rate = control(default_rpm=2)
    first = await gate.admit(key(), ROUTE)
    assert first.release is None
    assert first.headers["x-ratelimit-limit-requests"] == "2"
    assert first.headers["x-ratelimit-remaining-requests"] == "1"
    await gate.admit(key(), ROUTE)
    with pytest.raises(RateLimited) as refused:
        await gate.admit(key(), ROUTE)
    assert refused.value.status == 429 and refused.value.code == "rate_limit_exceeded"
    assert "requests per minute" in refused.value.message
    assert refused.value.headers["x-ratelimit-remaining-requests"] == "0"
    assert refused.value.retry_after is not None and refused.value.retry_after >= 1
    assert rate.hits == [("rpm:key_1", 1, 2, 60)] * 3


async def test_the_keys_own_rpm_overrides_the_default_and_buckets_are_per_key() -> None:
    gate, _, _ = control(KeyLimits("key_1", rpm=1), default_rpm=100)
    await gate.admit(key(), ROUTE)
    with pytest.raises(RateLimited):
        await gate.admit(key(), ROUTE)
    other = await gate.admit(key("key_2"), ROUTE)  # the default, in its own bucket
    assert other.headers["x-ratelimit-limit-requests"] == "100"


async def test_an_expired_key_is_refused_before_anything_is_counted(clock: Clock) -> None:
    gate, _, rate = control(KeyLimits("key_1", expires_at=clock.now - 1))
    with pytest.raises(AuthenticationFailed) as refused:
        await gate.admit(key(), ROUTE)
    assert refused.value.status == 401 and refused.value.code == "key_expired"
    assert rate.hits == []


async def test_expiry_is_exact_to_the_second(clock: Clock) -> None:
    gate, _, _ = control(KeyLimits("key_1", expires_at=clock.now + 1))
    assert (await gate.admit(key(), ROUTE)).headers
    clock.now += CACHE_SECONDS + 1  # past the expiry, and past the cached limits
    with pytest.raises(AuthenticationFailed):
        await gate.admit(key(), ROUTE)


async def test_routes_are_an_allow_list_of_globs() -> None:
    gate, _, rate = control(KeyLimits("key_1", routes=("/v1/images/*", "/flux/v1/sketch")))
    await gate.admit(key(), "/v1/images/edits")
    await gate.admit(key(), "/flux/v1/sketch")
    for route in ("/v1/chat/completions", "/flux/v1/sketch-pro", "/v1/images"):
        with pytest.raises(PermissionDenied) as refused:
            await gate.admit(key(), route)
        assert refused.value.status == 403 and refused.value.code == "route_not_allowed"
        assert route in refused.value.message
    assert len(rate.hits) == 2  # a refused route costs no request from the minute's budget


async def test_an_empty_route_list_allows_nothing() -> None:
    gate, _, _ = control(KeyLimits("key_1", routes=()))
    with pytest.raises(PermissionDenied):
        await gate.admit(key(), ROUTE)


async def test_concurrency_is_held_until_release_then_passes_on() -> None:
    gate, _, _ = control(KeyLimits("key_1", max_concurrent=1), queue_seconds=0.05)
    first = await gate.admit(key(), ROUTE)
    assert first.release is not None
    with pytest.raises(RateLimited) as refused:
        await gate.admit(key(), ROUTE)
    assert "concurrent" in refused.value.message
    other = await gate.admit(key("key_2"), ROUTE)  # another key's slots are its own
    assert other.release is None
    waiting = asyncio.ensure_future(gate.admit(key(), ROUTE))
    await asyncio.sleep(0)
    assert not waiting.done()
    first.release()
    second = await asyncio.wait_for(waiting, 1)
    assert second.release is not None
    second.release()


async def test_check_images_counts_images_per_minute() -> None:
    gate, _, rate = control(KeyLimits("key_1", images_per_minute=4))
    await gate.check_images(key(), 3, 0.5)
    with pytest.raises(RateLimited) as refused:
        await gate.check_images(key(), 2, 0.5)
    assert "images per minute" in refused.value.message
    await gate.check_images(key(), 1, 0.5)  # the one image still left this minute
    assert [hit[:2] for hit in rate.hits] == [("ipm:key_1", 3), ("ipm:key_1", 2), ("ipm:key_1", 1)]
    assert {hit[2:] for hit in rate.hits} == {(4, 60)}


async def test_check_images_counts_megapixels_per_day() -> None:
    gate, _, rate = control(KeyLimits("key_1", megapixels_per_day=2.0))
    await gate.check_images(key(), 1, 1.5)
    with pytest.raises(RateLimited) as refused:
        await gate.check_images(key(), 1, 1.0)
    assert "megapixels per day" in refused.value.message
    assert rate.hits[-1] == ("mpd:key_1", 1.0, 2.0, 86400)


async def test_check_images_with_no_image_limits_counts_nothing() -> None:
    gate, _, rate = control(KeyLimits("key_1", rpm=1))
    await gate.check_images(key(), 10, 100.0)
    await gate.check_images(key(), 10, 100.0)
    assert rate.hits == []


async def test_limits_are_read_once_per_cache_window(clock: Clock) -> None:
    gate, billing, _ = control(KeyLimits("key_1", balance_usd=Decimal(5)))
    for _ in range(3):
        assert (await gate.limits(key())).balance_usd == Decimal(5)
    await gate.check_images(key(), 1, 1.0)
    assert billing.reads == ["key_1"]
    billing.by_key["key_1"] = KeyLimits("key_1", balance_usd=Decimal(7))
    clock.now += CACHE_SECONDS - 0.1
    assert (await gate.limits(key())).balance_usd == Decimal(5)  # still the cached value
    clock.now += 0.2
    assert (await gate.limits(key())).balance_usd == Decimal(7)
    assert billing.reads == ["key_1", "key_1"]


async def test_forget_drops_one_keys_cached_limits(clock: Clock) -> None:
    gate, billing, _ = control(KeyLimits("key_1", rpm=5), KeyLimits("key_2", rpm=6))
    await gate.limits_of("key_1")
    await gate.limits_of("key_2")
    billing.by_key["key_1"] = KeyLimits("key_1", rpm=50)
    gate.forget("key_1")
    gate.forget("key_unknown")  # forgetting what is not cached is harmless
    assert (await gate.limits_of("key_1")).rpm == 50
    assert (await gate.limits_of("key_2")).rpm == 6
    assert billing.reads == ["key_1", "key_2", "key_1"]


class SlowBilling(FakeBilling):
    """Reads that wait for ``unblock``: concurrent misses overlap."""

    def __init__(self, *limits: KeyLimits) -> None:
        super().__init__(*limits)
        self.unblock = asyncio.Event()

    async def limits(self, key_id: str) -> KeyLimits:
        self.reads.append(key_id)
        found = self.by_key.get(key_id, KeyLimits(key_id))  # the row when the read began
        await self.unblock.wait()
        return found


def slow_control(*limits: KeyLimits) -> tuple[AccessControl, SlowBilling]:
    billing = SlowBilling(*limits)
    gate = AccessControl(billing, CountingRate(), ConcurrencyLimiter(0.05), default_rpm=100)
    return gate, billing


async def test_concurrent_misses_share_one_read(clock: Clock) -> None:
    gate, billing = slow_control(KeyLimits("key_1", rpm=5), KeyLimits("key_2", rpm=6))
    waiting = [asyncio.ensure_future(gate.limits_of(k)) for k in ("key_1",) * 16 + ("key_2",)]
    while len(billing.reads) < 2:
        await asyncio.sleep(0)
    for _ in range(3):
        await asyncio.sleep(0)  # no other read starts meanwhile
    billing.unblock.set()
    results = await asyncio.gather(*waiting)
    assert [r.rpm for r in results] == [5] * 16 + [6]
    assert billing.reads == ["key_1", "key_2"]
    await gate.limits_of("key_1")  # cached by the shared read
    assert billing.reads == ["key_1", "key_2"]


async def test_a_cancelled_caller_does_not_cancel_the_shared_read(clock: Clock) -> None:
    gate, billing = slow_control(KeyLimits("key_1", rpm=5))
    first = asyncio.ensure_future(gate.limits_of("key_1"))
    second = asyncio.ensure_future(gate.limits_of("key_1"))
    await asyncio.sleep(0)
    first.cancel()
    await asyncio.sleep(0)
    billing.unblock.set()
    assert (await second).rpm == 5
    assert first.cancelled()
    assert billing.reads == ["key_1"]


async def test_a_read_in_flight_when_forgotten_is_not_cached(clock: Clock) -> None:
    gate, billing = slow_control(KeyLimits("key_1", rpm=5))
    before = asyncio.ensure_future(gate.limits_of("key_1"))
    while not billing.reads:
        await asyncio.sleep(0)
    billing.by_key["key_1"] = KeyLimits("key_1", rpm=50)  # as an admin update would, then
    gate.forget("key_1")
    after = asyncio.ensure_future(gate.limits_of("key_1"))  # a new read, not the stale one
    await asyncio.sleep(0)
    billing.unblock.set()
    assert (await before).rpm == 5  # its own caller raced the update
    assert (await after).rpm == 50
    assert billing.reads == ["key_1", "key_1"]
    billing.by_key["key_1"] = KeyLimits("key_1", rpm=7)
    assert (await gate.limits_of("key_1")).rpm == 50  # the later read was cached


async def test_a_failed_shared_read_fails_every_waiter_and_is_not_cached(clock: Clock) -> None:
    gate, billing = slow_control()

    async def broken(key_id: str) -> KeyLimits:
        billing.reads.append(key_id)
        await billing.unblock.wait()
        raise ConnectionError("database down")

    billing.limits = broken  # type: ignore[method-assign]
    waiting = [asyncio.ensure_future(gate.limits_of("key_1")) for _ in range(3)]
    await asyncio.sleep(0)
    billing.unblock.set()
    for outcome in await asyncio.gather(*waiting, return_exceptions=True):
        assert isinstance(outcome, ConnectionError)
    with pytest.raises(ConnectionError):
        await gate.limits_of("key_1")  # tried again, not cached
    assert billing.reads == ["key_1", "key_1"]
