"""Group commit: many requests' small writes committed in one transaction.

RECONSTRUCTED by the tasks-benchmark session after it overwrote this (then uncommitted) module
by mistake; the API is rebuilt from its callers (``Billing``, ``ImageService``,
``AssetService``, ``Services``). Its author should check it against the original.

An *operation* is an ``async`` function of a :class:`Batch`: it reads and writes through
``batch.conn`` and may buffer rows (:meth:`Batch.insert`) and running sums
(:meth:`Batch.tally`), which are written once for the whole transaction. :meth:`GroupCommit.run`
queues an operation and returns its result once its transaction committed. If an operation
raises, the transaction is rolled back and each of its operations is run again alone, so only
the one that failed sees its error and the others commit as they would have alone.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

T = TypeVar("T")
Operation = Callable[["Batch"], Awaitable[T]]
TallyWriter = Callable[[AsyncConnection, dict[Any, Decimal]], Awaitable[None]]

MAX_BATCH = 500


class Batch:
    """One transaction's buffered rows and sums, over its connection."""

    def __init__(self, conn: AsyncConnection) -> None:
        self.conn = conn
        self.rows: dict[sa.Table, list[dict[str, Any]]] = {}
        self.sums: dict[str, dict[Any, Decimal]] = {}

    def insert(self, table: sa.Table, *rows: dict[str, Any]) -> None:
        """Insert ``rows`` into ``table`` with the transaction (one statement per table)."""
        self.rows.setdefault(table, []).extend(rows)

    def tally(self, name: str, key: Any, amount: Decimal) -> None:
        """Add ``amount`` to the running sum ``name`` of ``key`` (written by its tally writer)."""
        sums = self.sums.setdefault(name, {})
        sums[key] = sums.get(key, Decimal(0)) + amount


class GroupCommit:
    """Queues operations and commits them many to a transaction (see the module)."""

    def __init__(self, engine: AsyncEngine, *, max_batch: int = MAX_BATCH) -> None:
        self._engine = engine
        self._max_batch = max_batch
        self._tallies: dict[str, TallyWriter] = {}
        self._queue: list[tuple[Operation[Any], asyncio.Future[Any]]] = []
        self._flusher: asyncio.Task[None] | None = None

    def register_tally(self, name: str, writer: TallyWriter) -> None:
        self._tallies[name] = writer

    def start(self) -> None:
        """Nothing to start ahead: a flusher runs whenever operations are queued."""

    async def close(self) -> None:
        """Wait for what is queued to commit."""
        if self._flusher is not None:
            with contextlib.suppress(Exception):
                await asyncio.shield(self._flusher)

    async def run(self, operation: Operation[T]) -> T:
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._queue.append((operation, future))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush(), name="group-commit")
        return await future

    async def apply(self, batch: Batch) -> None:
        """Write ``batch``'s buffered rows and sums on its connection (its caller commits)."""
        for table, rows in batch.rows.items():
            if rows:
                await batch.conn.execute(table.insert(), rows)
        for name, sums in batch.sums.items():
            if sums:
                await self._tallies[name](batch.conn, sums)
        batch.rows, batch.sums = {}, {}

    async def _flush(self) -> None:
        while self._queue:
            queued = self._queue[: self._max_batch]
            del self._queue[: self._max_batch]
            queued = [(op, future) for op, future in queued if not future.cancelled()]
            if not queued:
                continue
            try:
                results = await asyncio.shield(self._transaction([op for op, _ in queued]))
            except Exception:
                await self._one_by_one(queued)
                continue
            for (_, future), result in zip(queued, results, strict=True):
                if not future.done():
                    future.set_result(result)

    async def _one_by_one(self, queued: list[tuple[Operation[Any], asyncio.Future[Any]]]) -> None:
        for op, future in queued:
            try:
                (result,) = await asyncio.shield(self._transaction([op]))
            except Exception as exc:
                if not future.done():
                    future.set_exception(exc)
            else:
                if not future.done():
                    future.set_result(result)

    async def _transaction(self, operations: list[Operation[Any]]) -> list[Any]:
        async with self._engine.begin() as conn:
            batch = Batch(conn)
            results = [await op(batch) for op in operations]
            await self.apply(batch)
        return results
