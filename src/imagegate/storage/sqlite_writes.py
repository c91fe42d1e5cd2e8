"""One writer at a time per process on SQLite, queued in asyncio instead of in SQLite's busy
handler.

SQLite lets one connection write at a time. When a pooled connection finds the write lock
taken, its busy handler sleeps 1, 2, 5, … up to 100 ms between retries, so concurrent writers
from one process wait far longer than the transaction ahead of them takes (and the tail latency
explodes). :func:`serialize_writes` makes every connection of an engine take a process-wide
:class:`asyncio.Lock` right before the statement that would take SQLite's write lock (the first
INSERT/UPDATE/DELETE/DDL of a transaction) and give it back when the transaction ends, so
writers of one process queue in FIFO order and start the moment the previous one commits.

The lock mirrors SQLite's own write lock (taken and released at the same points), so it adds
no waits SQLite would not impose; across processes the busy handler still arbitrates. Reads
never take it (WAL readers do not block writers). Acquiring gives up after ``timeout`` seconds
with ``database is locked``, as the busy timeout would.
"""

from __future__ import annotations

import asyncio
import re
import sqlite3
import weakref
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import PoolResetState
from sqlalchemy.util import await_only

from imagegate.aio import within

_WRITE = re.compile(r"\s*(INSERT|UPDATE|DELETE|REPLACE|CREATE|DROP|ALTER|WITH)\b", re.IGNORECASE)


class _WriteLocks:
    """The lock of each event loop, and which DBAPI connections hold theirs."""

    def __init__(self, timeout: float) -> None:
        self._timeout = timeout
        self._locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
            weakref.WeakKeyDictionary()
        )
        self._held: dict[int, asyncio.Lock] = {}

    def acquire(self, dbapi_connection: Any) -> None:
        key = id(dbapi_connection)
        if key in self._held:
            return
        lock = self.lock()
        if not lock.locked():
            await_only(lock.acquire())  # free: returns at once
        else:
            try:
                await_only(within(lock.acquire(), self._timeout))
            except TimeoutError:
                raise sqlite3.OperationalError("database is locked") from None
        self._held[key] = lock

    def lock(self) -> asyncio.Lock:
        loop = asyncio.get_running_loop()
        lock = self._locks.get(loop)
        if lock is None:
            lock = self._locks[loop] = asyncio.Lock()
        return lock

    def release(self, dbapi_connection: Any) -> None:
        lock = self._held.pop(id(dbapi_connection), None)
        if lock is not None:
            lock.release()


_ENGINES: weakref.WeakKeyDictionary[sa.Engine, _WriteLocks] = weakref.WeakKeyDictionary()


@asynccontextmanager
async def exclusive(engine: AsyncEngine) -> AsyncIterator[None]:
    """Hold the engine's write lock (for writes made outside its own connections, e.g. on a
    synchronous connection to the same file); a no-op for engines without one."""
    locks = _ENGINES.get(engine.sync_engine)
    if locks is None:
        yield
        return
    async with locks.lock():
        yield


def _dbapi(connection: Any) -> Any:
    """The DBAPI connection behind a pool fairy (or the connection itself)."""
    return getattr(connection, "dbapi_connection", connection)


def serialize_writes(engine: AsyncEngine, *, timeout: float = 30.0) -> None:
    """Make the SQLite ``engine``'s writers of this process queue on one lock (see module)."""
    locks = _WriteLocks(timeout)
    sync_engine = engine.sync_engine
    _ENGINES[sync_engine] = locks
    dialect = sync_engine.dialect

    def before_execute(conn: sa.Connection, _cursor: Any, statement: str, *_args: Any) -> None:
        if _WRITE.match(statement):
            locks.acquire(_dbapi(conn.connection))

    def ended(original: Any) -> Any:
        def end(dbapi_connection: Any) -> None:
            try:
                original(dbapi_connection)
            finally:
                locks.release(_dbapi(dbapi_connection))

        return end

    def dropped(dbapi_connection: Any, *_args: Any) -> None:
        locks.release(dbapi_connection)

    def reset(dbapi_connection: Any, _record: Any, state: PoolResetState) -> None:
        if not state.asyncio_safe:  # no ROLLBACK will follow: the connection is dropped
            locks.release(dbapi_connection)

    sa.event.listen(sync_engine, "before_cursor_execute", before_execute)
    # The lock is released after the COMMIT/ROLLBACK itself, as SQLite's is.
    setattr(dialect, "do_commit", ended(dialect.do_commit))  # noqa: B010
    setattr(dialect, "do_rollback", ended(dialect.do_rollback))  # noqa: B010
    # A connection closed, invalidated or collected mid-transaction must not keep the lock.
    sa.event.listen(sync_engine.pool, "reset", reset)
    for name in ("invalidate", "soft_invalidate", "close", "close_detached"):
        sa.event.listen(sync_engine.pool, name, dropped)
