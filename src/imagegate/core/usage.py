"""The usage log: one row per request, written in batches off the request path and never lost on
shutdown (a charged request's row is not queued here: it commits with its charge, see
:func:`values_of`). Rows never hold image bytes or secrets (the access log line is the
middleware's). The rows are written by a :class:`UsageLogRepository`
(``storage/repositories/usage_log.py``)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, fields, replace
from decimal import Decimal
from typing import Protocol

from imagegate.aio import wait_set
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


class UsageLogRepository(Protocol):
    """Where usage rows are written."""

    async def add(self, rows: Sequence[UsageRow]) -> None:
        """Write ``rows`` in one transaction: all of them, or (raising) none."""
        ...


class UsageRecorder:
    """Queues rows and flushes them every ``interval`` seconds or ``batch`` rows."""

    def __init__(
        self, usage_log: UsageLogRepository, *, interval: float = 0.25, batch: int = 500
    ) -> None:
        self._usage_log = usage_log
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
            await self._usage_log.add(rows)
        except BaseException:
            self._pending[:0] = rows
            raise

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.flush()


_FIELDS = tuple(f.name for f in fields(UsageRow))


def values_of(row: UsageRow) -> dict[str, object]:
    """``row`` as the usage table's columns (for writing it in a transaction of one's own)."""
    return columns(replace(row, created_at=row.created_at or time.time()))


def columns(row: UsageRow) -> dict[str, object]:
    """``row`` as the usage table's columns, as it is."""
    # Not dataclasses.asdict: it deep-copies every value, a measurable cost per request.
    return {name: getattr(row, name) for name in _FIELDS}
