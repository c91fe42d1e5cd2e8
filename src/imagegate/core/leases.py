"""The lease keeper: while this process lives it renews the leases of what it owns and is not
a task (its requests' credit holds and in-flight Idempotency-Keys); and it cleans up after
processes that died (releases their expired holds). One loop, a third of a lease apart, so
a crash's leftovers are freed within about a lease and a third."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from imagegate.aio import wait_set
from imagegate.core.billing import Billing
from imagegate.core.idempotency import IdempotencyStore

log = logging.getLogger("imagegate.leases")


class LeaseKeeper:
    def __init__(self, billing: Billing, idempotency: IdempotencyStore, lease_seconds: float):
        self._billing = billing
        self._idempotency = idempotency
        self._interval = lease_seconds / 3
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="lease-keeper")

    async def close(self) -> None:
        """Stop between rounds, never in the middle of a database call."""
        if self._task is not None:
            self._stopping.set()
            with contextlib.suppress(Exception):
                await self._task

    async def _run(self) -> None:
        while not await wait_set(self._stopping, self._interval):
            try:
                await self.round()
            except Exception:
                log.warning("renewing leases failed; retrying", exc_info=True)

    async def round(self) -> int:
        """Renew ours, release the dead's; returns how many holds were released."""
        now = time.time()
        await self._billing.renew_holds(now)
        await self._idempotency.renew(now)
        released = await self._billing.release_expired(now)
        if released:
            log.info("released %d credit holds left by a stopped process", released)
        return released
