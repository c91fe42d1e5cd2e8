"""The task engine's writes, group-committed: many callers' small write transactions run as
one transaction.

A caller hands :meth:`TaskCommits.run` a *job*, an ``async`` function of a connection that only
talks to the database, and waits for it to be committed. One flusher takes every job queued
meanwhile, runs them one after another in a single transaction and commits once; each caller
then gets its own job's result. If any job raises, the batch is rolled back and each of its
jobs is run again in a transaction of its own, so a job commits exactly when it would have
alone and only its caller sees its error. A job whose caller was cancelled before its batch
started is dropped; once its batch has started it commits like the others.

On a SQLite file the batch runs on a synchronous connection in a dedicated thread, holding the
process's write lock (:func:`~imagegate.storage.sqlite_writes.exclusive`): its statements then
cost microseconds each instead of an event-loop round trip each, which is what held SQLite's one
write lock for milliseconds per transaction. Jobs are the same ``async`` functions either way;
on that connection their ``await conn.execute(...)`` completes without suspending, and a job
that awaits anything else is an error. Elsewhere (PostgreSQL, in-memory SQLite) a batch is an
ordinary async transaction.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar, cast

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from imagegate.storage.sqlite_writes import exclusive

T = TypeVar("T")
Job = Callable[[AsyncConnection], Awaitable[T]]

log = logging.getLogger("imagegate.storage")

MAX_BATCH = 500


class TaskCommits:
    """Queues write jobs and commits them many to a transaction (see the module)."""

    def __init__(self, engine: AsyncEngine, *, max_batch: int = MAX_BATCH) -> None:
        self._engine = engine
        self._max_batch = max_batch
        self._queue: list[tuple[Job[Any], asyncio.Future[Any]]] = []
        self._flusher: asyncio.Task[None] | None = None
        self._sync = _sync_engine(engine)
        self._thread: ThreadPoolExecutor | None = None

    async def run(self, job: Job[T]) -> T:
        """Run ``job`` in the next batch and return its result once committed."""
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._queue.append((job, future))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush(), name="task-commits")
        return await future

    async def close(self) -> None:
        """Finish what is queued, then close the synchronous connection and its thread (both
        come back if more jobs arrive)."""
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
            batch = self._queue[: self._max_batch]
            del self._queue[: self._max_batch]
            batch = [(job, future) for job, future in batch if not future.cancelled()]
            if not batch:
                continue
            try:
                results = await asyncio.shield(self._transaction([job for job, _ in batch]))
            except Exception:
                if len(batch) == 1:
                    results = None
                else:
                    await self._one_by_one(batch)
                    continue
            if results is None:  # a lone job failed: run it again to hand over its error
                await self._one_by_one(batch)
                continue
            for (_, future), result in zip(batch, results, strict=True):
                if not future.done():
                    future.set_result(result)

    async def _one_by_one(self, batch: list[tuple[Job[Any], asyncio.Future[Any]]]) -> None:
        for job, future in batch:
            try:
                (result,) = await asyncio.shield(self._transaction([job]))
            except Exception as exc:
                if not future.done():
                    future.set_exception(exc)
            else:
                if not future.done():
                    future.set_result(result)

    async def _transaction(self, jobs: Sequence[Job[Any]]) -> list[Any]:
        if self._sync is None:
            async with self._engine.begin() as conn:
                return [await job(conn) for job in jobs]
        if self._thread is None:
            self._thread = ThreadPoolExecutor(1, "task-commits")
        sync, thread = self._sync, self._thread
        async with exclusive(self._engine):
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(thread, _run_sync, sync, jobs)


def _sync_engine(engine: AsyncEngine) -> sa.Engine | None:
    """A synchronous engine on the same SQLite file (None for other databases or memory)."""
    url = engine.url
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return None
    sync = sa.create_engine(
        url.set(drivername="sqlite"), connect_args={"timeout": 30}, pool_size=1, max_overflow=0
    )
    sa.event.listen(sync, "connect", _pragmas)
    return sync


def _pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def _run_sync(engine: sa.Engine, jobs: Sequence[Job[Any]]) -> list[Any]:
    with engine.begin() as conn:
        facade = cast(AsyncConnection, _Immediate(conn))
        return [_drive(job(facade)) for job in jobs]


class _Immediate:
    """What jobs use of an :class:`AsyncConnection`, on a synchronous connection."""

    __slots__ = ("_conn",)

    def __init__(self, conn: sa.Connection) -> None:
        self._conn = conn

    async def execute(self, statement: Any, parameters: Any = None) -> Any:
        return self._conn.execute(statement, parameters)

    async def scalar(self, statement: Any, parameters: Any = None) -> Any:
        return self._conn.scalar(statement, parameters)


def _drive(awaitable: Awaitable[T]) -> T:
    """Run a job that never suspends to its end."""
    coroutine = cast(Coroutine[Any, Any, T], awaitable)
    try:
        coroutine.send(None)
    except StopIteration as done:
        return cast(T, done.value)
    coroutine.close()
    raise RuntimeError("a task-commit job awaited something other than its connection")
