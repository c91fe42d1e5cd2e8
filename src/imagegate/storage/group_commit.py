"""Group commit: many requests' small writes share one transaction and one commit.

A request hands :meth:`GroupCommit.run` an operation; a single writer task runs every queued
operation in one transaction, appends their rows with one ``executemany`` per table, adds their
tallies with one statement per key, commits, and only then wakes each caller with its result.
Each caller therefore sees its writes durable, exactly as with its own transaction, while the
database sees one commit per batch.

An operation that raises a domain error (:class:`~imagegate.errors.ImagegateError`, e.g. a
refused quota) must not have written anything (check first, then write): its error goes to its
caller alone and its deferred rows are dropped. If the batch fails otherwise (a deadlock, a
constraint), every operation is retried in a transaction of its own, so only the guilty one
fails.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Generic, TypeVar

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from imagegate.errors import ImagegateError

log = logging.getLogger("imagegate.storage")

T = TypeVar("T")
TallyWriter = Callable[[AsyncConnection, dict[Hashable, Decimal]], Awaitable[None]]


@dataclass(slots=True)
class Batch:
    """What one operation sees: the shared connection and its deferred writes."""

    conn: AsyncConnection
    rows: dict[sa.Table, list[dict[str, Any]]] = field(default_factory=lambda: defaultdict(list))
    tallies: dict[str, dict[Hashable, Decimal]] = field(
        default_factory=lambda: defaultdict(lambda: defaultdict(Decimal))
    )

    def insert(self, table: sa.Table, *rows: dict[str, Any]) -> None:
        """Insert ``rows`` at the end of the batch, merged with other operations' rows."""
        self.rows[table].extend(rows)

    def tally(self, name: str, key: Hashable, amount: Decimal) -> None:
        """Add ``amount`` to counter ``name`` for ``key``, summed over the batch and written by
        the writer registered with :meth:`GroupCommit.register_tally`."""
        self.tallies[name][key] += amount

    def merge(self, other: Batch) -> None:
        for table, rows in other.rows.items():
            self.rows[table].extend(rows)
        for name, counts in other.tallies.items():
            for key, amount in counts.items():
                self.tallies[name][key] += amount


Operation = Callable[[Batch], Awaitable[T]]


@dataclass(slots=True)
class _Queued(Generic[T]):
    operation: Operation[T]
    future: asyncio.Future[T]


class GroupCommit:
    """Runs queued write operations in shared transactions; see the module docstring."""

    def __init__(self, engine: AsyncEngine, *, max_batch: int = 256) -> None:
        self._engine = engine
        self._max_batch = max_batch
        self._queue: list[_Queued[Any]] = []
        self._wake = asyncio.Event()
        self._tally_writers: dict[str, TallyWriter] = {}
        self._task: asyncio.Task[None] | None = None
        self._closing = False

    def register_tally(self, name: str, writer: TallyWriter) -> None:
        self._tally_writers[name] = writer

    async def run(self, operation: Operation[T]) -> T:
        """Run ``operation`` in the next batch; returns once that batch has committed (before
        :meth:`start` and after :meth:`close`, in a transaction of its own)."""
        if self._task is None or self._closing:
            return await self._alone(operation)
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._queue.append(_Queued(operation, future))
        self._wake.set()
        # Shielded: a caller that goes away does not undo writes it already queued.
        return await asyncio.shield(future)

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="group-commit")

    async def close(self) -> None:
        """Finish what is queued, then stop."""
        self._closing = True
        self._wake.set()
        if self._task is not None:
            await self._task

    async def apply(self, batch: Batch) -> None:
        """Write ``batch``'s deferred rows and tallies on its connection (for callers that
        built a :class:`Batch` in a transaction of their own)."""
        for table, rows in batch.rows.items():
            if rows:
                await batch.conn.execute(table.insert(), rows)
        for name, counts in batch.tallies.items():
            if counts:
                await self._tally_writers[name](batch.conn, dict(counts))

    async def _loop(self) -> None:
        while self._queue or not self._closing:
            if not self._queue:
                await self._wake.wait()
                self._wake.clear()
                continue
            try:
                await self._flush()
            except Exception:  # pragma: no cover - _flush hands every error to a caller
                log.exception("group commit failed")

    async def _flush(self) -> None:
        batch, self._queue = self._queue[: self._max_batch], self._queue[self._max_batch :]
        try:
            await self._together(batch)
        except Exception:
            log.warning("a group commit of %d operations failed; retrying each", len(batch))
            for queued in batch:
                if not queued.future.done():
                    await self._settle(queued, self._alone(queued.operation))

    async def _together(self, queued: list[_Queued[Any]]) -> None:
        outcomes: list[tuple[_Queued[Any], Any, BaseException | None]] = []
        async with self._engine.begin() as conn:
            shared = Batch(conn)
            for item in queued:
                own = Batch(conn)
                try:
                    result = await item.operation(own)
                except ImagegateError as exc:
                    outcomes.append((item, None, exc))
                    continue
                shared.merge(own)
                outcomes.append((item, result, None))
            await self.apply(shared)
        for item, result, error in outcomes:
            if error is not None:
                item.future.set_exception(error)
            else:
                item.future.set_result(result)

    async def _alone(self, operation: Operation[T]) -> T:
        async with self._engine.begin() as conn:
            batch = Batch(conn)
            result = await operation(batch)
            await self.apply(batch)
        return result

    @staticmethod
    async def _settle(queued: _Queued[T], outcome: Awaitable[T]) -> None:
        try:
            queued.future.set_result(await outcome)
        except Exception as exc:
            queued.future.set_exception(exc)
