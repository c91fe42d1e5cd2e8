"""Group commit: many callers' small writes share one transaction and one commit.

A caller hands :meth:`GroupCommit.run` an *operation*, an ``async`` function of a
:class:`Batch` that reads and writes through ``batch.conn`` and may defer rows
(:meth:`Batch.insert`, one ``executemany`` per table for the whole batch) and running sums
(:meth:`Batch.tally`, written once per batch by the writer registered for them). One flusher
takes every operation queued meanwhile, runs them one after another in a single transaction and
commits once; only then does each caller get its result, so each sees its writes durable exactly
as with a transaction of its own.

* An operation that raises a domain error (:class:`~imagegate.errors.ImagegateError`, e.g. a
  refused quota) must not have written anything (check first, then write): its error goes to
  its caller alone and its deferred rows are dropped.
* If the batch fails otherwise (a deadlock, a constraint), it is rolled back and each operation
  is run again in a transaction of its own, so only the guilty one fails.
* An operation whose caller was cancelled before its batch started is dropped; once its batch
  has started it commits like the others.

On a SQLite file the batch runs on a synchronous connection in a dedicated thread, holding the
process's write lock (:func:`~imagegate.storage.sqlite_writes.exclusive`): its statements then
cost microseconds each instead of an event-loop round trip each, which is what kept SQLite's
one write lock held for milliseconds per transaction. Operations are the same ``async``
functions either way; on that connection their ``await conn.execute(...)`` completes without
suspending, and an operation that awaits anything else is an error. Elsewhere (PostgreSQL,
in-memory SQLite) a batch is an ordinary async transaction.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable, Coroutine, Hashable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Generic, TypeVar, cast

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from imagegate.core.unit_of_work import UnitOfWork
from imagegate.errors import ImagegateError
from imagegate.pacing import Pacer
from imagegate.storage.db import sqlite_pragmas
from imagegate.storage.sqlite_writes import exclusive

log = logging.getLogger("imagegate.storage")

T = TypeVar("T")
TallyWriter = Callable[[AsyncConnection, dict[Hashable, Decimal]], Awaitable[None]]
MAX_BATCH = 500


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
Outcome = tuple[Any, BaseException | None]


@dataclass(slots=True)
class _Queued(Generic[T]):
    operation: Operation[T]
    future: asyncio.Future[T]


def batch_of(uow: UnitOfWork) -> Batch:
    """The :class:`Batch` behind a core unit of work (repositories call this to reach SQL)."""
    if not isinstance(uow, Batch):
        raise TypeError(f"not a unit of work of this store: {type(uow).__name__}")
    return uow


class GroupCommit:
    """Queues write operations and commits them many to a transaction (see the module)."""

    def __init__(
        self, engine: AsyncEngine, *, max_batch: int = MAX_BATCH, pacer: Pacer | None = None
    ) -> None:
        """``pacer``: a committed batch's callers resume a few per loop iteration, not all in
        one (see :mod:`imagegate.pacing`)."""
        self._engine = engine
        self._pacer = pacer
        self._max_batch = max_batch
        self._queue: list[_Queued[Any]] = []
        self._flusher: asyncio.Task[None] | None = None
        self._tally_writers: dict[str, TallyWriter] = {}
        self._sync = _sync_engine(engine)
        self._thread: ThreadPoolExecutor | None = None

    def register_tally(self, name: str, writer: TallyWriter) -> None:
        self._tally_writers[name] = writer

    async def run(self, operation: Operation[T]) -> T:
        """Run ``operation`` in the next batch; returns once that batch has committed."""
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._queue.append(_Queued(operation, future))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush(), name="group-commit")
        return await future

    async def apply(self, batch: Batch) -> None:
        """Write ``batch``'s deferred rows and tallies on its connection (for callers that
        built a :class:`Batch` in a transaction of their own)."""
        await _apply(batch, self._tally_writers)

    async def close(self) -> None:
        """Finish what is queued, then close the synchronous connection and its thread (both
        come back if more operations arrive)."""
        if self._flusher is not None:
            with contextlib.suppress(Exception):
                await asyncio.shield(self._flusher)
        if self._thread is not None:
            thread, self._thread = self._thread, None
            await asyncio.to_thread(thread.shutdown, wait=True)
        if self._sync is not None:
            self._sync.dispose()

    async def _flush(self) -> None:
        while self._queue:
            batch = [q for q in self._queue[: self._max_batch] if not q.future.cancelled()]
            del self._queue[: self._max_batch]
            if not batch:
                continue
            try:
                outcomes = await asyncio.shield(self._transaction([q.operation for q in batch]))
            except Exception as exc:
                if len(batch) == 1:
                    _resolve(batch[0].future, None, exc)
                    continue
                log.warning("a group commit of %d operations failed; retrying each", len(batch))
                for queued in batch:
                    await self._alone(queued)
                continue
            for queued, (result, error) in zip(batch, outcomes, strict=True):
                if self._pacer is not None:
                    await self._pacer.turn()
                _resolve(queued.future, result, error)

    async def _alone(self, queued: _Queued[Any]) -> None:
        try:
            ((result, error),) = await asyncio.shield(self._transaction([queued.operation]))
        except Exception as exc:
            result, error = None, exc
        _resolve(queued.future, result, error)

    async def _transaction(self, operations: Sequence[Operation[Any]]) -> list[Outcome]:
        if self._sync is None:
            async with self._engine.begin() as conn:
                return await _together(conn, operations, self._tally_writers)
        if self._thread is None:
            self._thread = ThreadPoolExecutor(1, "group-commit")
        sync, thread, writers = self._sync, self._thread, self._tally_writers
        async with exclusive(self._engine):
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(thread, _run_sync, sync, operations, writers)


async def _together(
    conn: AsyncConnection,
    operations: Sequence[Operation[Any]],
    tally_writers: dict[str, TallyWriter],
) -> list[Outcome]:
    shared = Batch(conn)
    outcomes: list[Outcome] = []
    for operation in operations:
        own = Batch(conn)
        try:
            result = await operation(own)
        except ImagegateError as exc:
            outcomes.append((None, exc))
            continue
        shared.merge(own)
        outcomes.append((result, None))
    await _apply(shared, tally_writers)
    return outcomes


async def _apply(batch: Batch, tally_writers: dict[str, TallyWriter]) -> None:
    for table, rows in batch.rows.items():
        if rows:
            await batch.conn.execute(_insert_of(table), rows)
    for name, counts in batch.tallies.items():
        if counts:
            await tally_writers[name](batch.conn, dict(counts))


_INSERTS: dict[sa.Table, sa.Insert] = {}


def _insert_of(table: sa.Table) -> sa.Insert:
    """``table.insert()``, built once per table: a statement object remembers its compiled
    form's cache key, which SQLAlchemy otherwise derives afresh on every execution by walking
    the table's columns (a tenth of a millisecond a batch on the small-request path)."""
    insert = _INSERTS.get(table)
    if insert is None:
        insert = _INSERTS[table] = table.insert()
    return insert


def _resolve(future: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    if future.done():  # its caller was cancelled while the batch ran
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)


def _sync_engine(engine: AsyncEngine) -> sa.Engine | None:
    """A synchronous engine on the same SQLite file (None for other databases or memory)."""
    url = engine.url
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return None
    sync = sa.create_engine(
        url.set(drivername="sqlite"), connect_args={"timeout": 30}, pool_size=1, max_overflow=0
    )
    sa.event.listen(sync, "connect", sqlite_pragmas)
    return sync


def _run_sync(
    engine: sa.Engine,
    operations: Sequence[Operation[Any]],
    tally_writers: dict[str, TallyWriter],
) -> list[Outcome]:
    with engine.begin() as conn:
        facade = cast(AsyncConnection, _Immediate(conn))
        return _drive(_together(facade, operations, tally_writers))


class _Immediate:
    """What operations use of an :class:`AsyncConnection`, on a synchronous connection."""

    __slots__ = ("_conn",)

    def __init__(self, conn: sa.Connection) -> None:
        self._conn = conn

    async def execute(self, statement: Any, parameters: Any = None) -> Any:
        return self._conn.execute(statement, parameters)

    async def scalar(self, statement: Any, parameters: Any = None) -> Any:
        return self._conn.scalar(statement, parameters)


def _drive(awaitable: Awaitable[T]) -> T:
    """Run a coroutine that never suspends to its end."""
    coroutine = cast(Coroutine[Any, Any, T], awaitable)
    try:
        coroutine.send(None)
    except StopIteration as done:
        return cast(T, done.value)
    coroutine.close()
    raise RuntimeError("a group-commit operation awaited something other than its connection")
