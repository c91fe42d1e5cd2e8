"""core.keys' in-memory cache of authenticated keys: concurrent misses share one read, and a
revocation wins over a read that was in flight."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any, cast

from imagegate.core.keys import ApiKey, KeyService, hash_key

SECRET = "ig-" + "s" * 40


class SlowKeys:
    """``by_hash`` and ``revoke`` of a :class:`~imagegate.core.keys.KeyRepository`; reads wait
    for ``release`` so that concurrent misses overlap."""

    def __init__(self, key: ApiKey) -> None:
        self.key = key
        self.reads = 0
        self.release = asyncio.Event()

    async def by_hash(self, key_hash: str) -> ApiKey | None:
        self.reads += 1
        found = self.key  # as the row was when the read began
        await self.release.wait()
        return found if key_hash == hash_key(SECRET) else None

    async def revoke(self, key_id: str, now: float) -> ApiKey | None:
        self.key = replace(self.key, revoked_at=now)
        return self.key


def service() -> tuple[KeyService, SlowKeys]:
    keys = SlowKeys(ApiKey("key_1", "one", "ig-ssssss", None, False, 0.0))
    return KeyService(cast(Any, keys), cast(Any, None), cast(Any, None)), keys


async def test_concurrent_misses_share_one_read_and_fill_the_cache() -> None:
    keys_service, keys = service()
    waiting = [asyncio.ensure_future(keys_service.authenticate(SECRET)) for _ in range(16)]
    await asyncio.sleep(0)
    keys.release.set()
    assert {k.id for k in await asyncio.gather(*waiting) if k is not None} == {"key_1"}
    assert keys.reads == 1
    assert (await keys_service.authenticate(SECRET)) is not None
    assert keys.reads == 1  # cached


async def test_a_revocation_during_a_read_is_not_undone_by_its_result() -> None:
    keys_service, keys = service()
    reading = asyncio.ensure_future(keys_service.authenticate(SECRET))
    while not keys.reads:
        await asyncio.sleep(0)
    await keys_service.revoke("key_1")  # the read in flight saw the key before this
    keys.release.set()
    assert (await reading) is not None  # its own caller raced the revocation
    assert await keys_service.authenticate(SECRET) is None  # read again, not cached
    assert keys.reads == 2
