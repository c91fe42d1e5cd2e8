"""The usage log: one row per request, written in batches off the request path and never lost on
shutdown (a charged request's row is not queued here: it commits with its charge, see
:meth:`UsageRowRepository.add`). Rows never hold image bytes or secrets (the access log line is
the middleware's). The rows are written by a :class:`UsageRowRepository`
(``storage/repositories/usage_rows.py``)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Protocol

from imagegate.aio import wait_set
from imagegate.core.unit_of_work import UnitOfWork
from imagegate.observability import metrics

log = logging.getLogger("imagegate.usage")


@dataclass(frozen=True, slots=True)
class UsageRow:
    request_id: str
    key_id: str | None
    model: str | None
    route: str
    status: int
    latency_ms: float
    n: int = 0
    images: int = 0
    size: str | None = None
    quality: str | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: Decimal = Decimal(0)
    error_code: str | None = None
    user: str | None = None
    created_at: float = 0.0


class UsageRowRepository(Protocol):
    """Where usage rows are written: inside a caller's unit of work (a task's completion, a
    synchronous request's delivery, so a row says exactly what the ledger says), or on their own
    (the recorder's batches of refusals and free requests)."""

    def add(self, uow: UnitOfWork, *rows: UsageRow) -> None:
        """Write ``rows`` with the unit of work's other rows (at its end); a row without
        ``created_at`` is stamped now."""
        ...

    async def write(self, rows: Sequence[UsageRow]) -> None:
        """Write ``rows`` in one transaction of their own: all of them, or (raising) none."""
        ...


class UsageRecorder:
    """Queues rows and flushes them every ``interval`` seconds or ``batch`` rows."""

    def __init__(
        self, rows: UsageRowRepository, *, interval: float = 0.25, batch: int = 500
    ) -> None:
        self._rows = rows
        self._interval = interval
        self._batch = batch
        self._pending: list[UsageRow] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def record(self, row: UsageRow) -> None:
        metrics.cost(row.model, row.cost_usd)
        if not row.created_at:
            row = replace(row, created_at=time.time())
        self._pending.append(row)
        if len(self._pending) >= self._batch:
            self._wake.set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="usage-flusher")

    async def _run(self) -> None:
        while True:
            await wait_set(self._wake, self._interval)
            self._wake.clear()
            try:
                await self.flush()
            except Exception:
                log.exception("usage flush failed; rows kept for the next try")

    async def flush(self) -> None:
        rows, self._pending = self._pending, []
        if not rows:
            return
        try:
            await self._rows.write(rows)
        except BaseException:
            self._pending[:0] = rows
            raise

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.flush()
