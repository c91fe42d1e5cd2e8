"""SQL for tasks (:class:`~imagegate.core.tasks.TaskRepository`): insert, claim with leases
(SKIP LOCKED on PostgreSQL), heartbeat, finish.

Writes on the hot path (insert, claim, progress, and the engine's completing transactions,
which run :meth:`TaskStore.finish` in their unit of work) are group-committed by
:class:`~.group_commit.GroupCommit`. So are the heartbeat and the hand-back at shutdown:
every write of a process to its task rows then runs in one sequence, so two of them can never
lock the same rows in opposite orders (on PostgreSQL that deadlocked a stopping server against
its own last batch)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from imagegate.core.task_model import (
    CLAIMABLE,
    NEW_TASK_DEFAULTS,
    UNFINISHED,
    WAITING,
    TaskRecord,
)
from imagegate.core.unit_of_work import UnitOfWork
from imagegate.storage.claims import claim_update
from imagegate.storage.group_commit import Batch, GroupCommit, batch_of
from imagegate.storage.tables import reservations, tasks

T = TypeVar("T")
log = logging.getLogger("imagegate.tasks")
HAND_BACK_TRIES = 3


# Built once: polls run these many times a second, and building a statement (and its cache
# key) cost more than running it.
_GET = tasks.select().where(tasks.c.id == sa.bindparam("id"))
_GET_MANY = tasks.select().where(
    tasks.c.id.in_(sa.bindparam("ids", expanding=True)),
    tasks.c.owner_key_id == sa.bindparam("owner"),
)
# Executed with the new column values as parameters (SQLAlchemy SETs the columns it is given).
_FINISH_HELD = tasks.update().where(
    tasks.c.id == sa.bindparam("b_id"),
    tasks.c.lease_owner == sa.bindparam("b_worker"),
    tasks.c.status == "running",
)
_FINISH_WAITING = tasks.update().where(
    tasks.c.id == sa.bindparam("b_id"), tasks.c.status.in_(WAITING)
)
_COUNT_ACTIVE = (
    sa.select(sa.func.count())
    .select_from(tasks)
    .where(
        tasks.c.owner_key_id == sa.bindparam("owner"),
        tasks.c.status.in_(UNFINISHED),
    )
)


def _claim_statement(*, postgres: bool) -> sa.Update:
    """Claim up to ``b_limit`` queued tasks, or running ones whose lease ran out by ``b_now``,
    for ``b_worker`` until ``b_until`` (built once: the claim loop runs it many times a second)."""
    now = sa.bindparam("b_now", type_=sa.Float)
    claimable = sa.or_(
        tasks.c.status == CLAIMABLE,
        sa.and_(tasks.c.status == "running", tasks.c.lease_expires_at < now),
    )
    candidates = (
        sa.select(tasks.c.id)
        .where(claimable)
        .order_by(tasks.c.created_at)
        .limit(sa.bindparam("b_limit", type_=sa.Integer))
    )
    values = {
        "status": "running",
        "lease_owner": sa.bindparam("b_worker", type_=sa.String),
        "lease_expires_at": sa.bindparam("b_until", type_=sa.Float),
        "attempts": tasks.c.attempts + 1,
        # A task committed while this claim's clock was read must not start before it was
        # created.
        "started_at": sa.func.coalesce(
            tasks.c.started_at, sa.case((tasks.c.created_at > now, tasks.c.created_at), else_=now)
        ),
        "updated_at": now,
    }
    return claim_update(tasks, candidates, values, postgres=postgres, still_claimable=claimable)


def to_record(row: sa.RowMapping) -> TaskRecord:
    return TaskRecord(**{column.name: row[column.name] for column in tasks.columns})


def to_record_of(values: dict[str, Any]) -> TaskRecord:
    return TaskRecord(**{column.name: values[column.name] for column in tasks.columns})


class TaskStore:
    """Every query the task engine makes; callers pass times so tests can move the clock."""

    def __init__(self, engine: AsyncEngine, writer: GroupCommit | None = None) -> None:
        self._engine = engine
        self._postgres = engine.dialect.name == "postgresql"
        self._commits = writer or GroupCommit(engine)
        self._claim = _claim_statement(postgres=self._postgres)

    async def write(self, job: Callable[[Batch], Awaitable[T]]) -> T:
        """Run ``job`` (database work only) in the next group-committed transaction."""
        return await self._commits.run(job)

    async def close(self) -> None:
        await self._commits.close()

    async def insert(self, values: dict[str, Any]) -> TaskRecord:
        """Store a new task; the record is built from ``values`` (no read back)."""

        async def job(batch: Batch) -> None:
            await batch.conn.execute(tasks.insert(), [values])

        await self.write(job)
        return to_record_of({**NEW_TASK_DEFAULTS, **values})

    async def fetch(self, uow: UnitOfWork, task_id: str) -> TaskRecord:
        row = (await batch_of(uow).conn.execute(_GET, {"id": task_id})).mappings().one()
        return to_record(row)

    async def get(self, task_id: str) -> TaskRecord | None:
        async with self._engine.connect() as conn:
            row = (await conn.execute(_GET, {"id": task_id})).mappings().first()
        return to_record(row) if row else None

    async def get_many(self, ids: Sequence[str], owner_key_id: str) -> list[TaskRecord]:
        async with self._engine.connect() as conn:
            parameters = {"ids": list(ids), "owner": owner_key_id}
            rows = (await conn.execute(_GET_MANY, parameters)).mappings().all()
        found = {row["id"]: to_record(row) for row in rows}
        return [found[task_id] for task_id in ids if task_id in found]

    async def list_owned(
        self, owner_key_id: str, kind: str, *, before: tuple[float, str] | None, limit: int
    ) -> list[TaskRecord]:
        """The owner's tasks of ``kind``, newest first, strictly older than ``before``
        (``(created_at, id)`` of the last one a previous page showed)."""
        query = sa.select(tasks).where(tasks.c.owner_key_id == owner_key_id, tasks.c.kind == kind)
        if before is not None:
            created_at, task_id = before
            query = query.where(
                sa.or_(
                    tasks.c.created_at < created_at,
                    sa.and_(tasks.c.created_at == created_at, tasks.c.id < task_id),
                )
            )
        query = query.order_by(tasks.c.created_at.desc(), tasks.c.id.desc()).limit(limit)
        async with self._engine.connect() as conn:
            rows = (await conn.execute(query)).mappings().all()
        return [to_record(row) for row in rows]

    async def count_active(self, owner_key_id: str) -> int:
        async with self._engine.connect() as conn:
            return int((await conn.execute(_COUNT_ACTIVE, {"owner": owner_key_id})).scalar_one())

    async def submitted_by(self, owner_key_id: str, request_id: str) -> list[str]:
        query = (
            sa.select(tasks.c.id)
            .select_from(tasks.join(reservations, tasks.c.reservation_id == reservations.c.id))
            .where(reservations.c.request_id == request_id, tasks.c.owner_key_id == owner_key_id)
        )
        async with self._engine.connect() as conn:
            return [str(task_id) for task_id in (await conn.execute(query)).scalars()]

    async def claim(self, worker: str, limit: int, now: float, lease: float) -> list[TaskRecord]:
        """Take up to ``limit`` queued tasks, or running ones whose lease has run out."""
        parameters = {"b_worker": worker, "b_limit": limit, "b_now": now, "b_until": now + lease}

        async def job(batch: Batch) -> list[TaskRecord]:
            rows = (await batch.conn.execute(self._claim, parameters)).mappings().all()
            return [to_record(row) for row in rows]

        claimed = await self.write(job)
        return sorted(claimed, key=lambda task: task.created_at)

    async def heartbeat(
        self, worker: str, task_ids: Sequence[str], now: float, lease: float
    ) -> set[str]:
        """Extend our leases; returns the ids whose cancellation was requested."""
        if not task_ids:
            return set()
        ours = sa.and_(tasks.c.id.in_(list(task_ids)), tasks.c.lease_owner == worker)

        async def job(batch: Batch) -> set[str]:
            conn = batch.conn
            await conn.execute(
                tasks.update()
                .where(ours, tasks.c.status == "running")
                .values(lease_expires_at=now + lease)
            )
            cancelled = await conn.execute(
                sa.select(tasks.c.id).where(ours, tasks.c.cancel_requested.is_(True))
            )
            return set(cancelled.scalars())

        return await self.write(job)

    async def abandon(self, worker: str, now: float) -> int:
        """End every lease ``worker`` holds on a running task at once (a server stopping):
        the next claim, on any worker, picks them up instead of waiting for the leases to run
        out. By owner, not by the ids it knows of, so a claim that committed while it was
        stopping is handed back too. A failed try (a deadlock) is tried again."""
        statement = (
            tasks.update()
            .where(tasks.c.lease_owner == worker, tasks.c.status == "running")
            .values(lease_expires_at=now, updated_at=now)
        )

        async def job(batch: Batch) -> int:
            return int((await batch.conn.execute(statement)).rowcount or 0)

        for attempt in range(1, HAND_BACK_TRIES + 1):
            try:
                return await self.write(job)
            except DBAPIError:
                if attempt == HAND_BACK_TRIES:
                    raise
                log.warning("handing tasks back failed (try %d); trying again", attempt)
                await asyncio.sleep(0.05 * attempt)
        return 0  # pragma: no cover - the loop returns or raises

    async def set_progress(self, task_id: str, worker: str, progress: int, now: float) -> None:
        statement = (
            tasks.update()
            .where(
                tasks.c.id == task_id, tasks.c.lease_owner == worker, tasks.c.status == "running"
            )
            .values(progress=progress, updated_at=now)
        )

        async def job(batch: Batch) -> None:
            await batch.conn.execute(statement)

        await self.write(job)

    async def set_upstream_jobs(
        self, task_id: str, worker: str, jobs: dict[str, Any], now: float
    ) -> None:
        """Keep the upstream jobs of a task ``worker`` runs (only while its lease is held)."""
        statement = (
            tasks.update()
            .where(
                tasks.c.id == task_id, tasks.c.lease_owner == worker, tasks.c.status == "running"
            )
            .values(upstream_jobs=jobs, updated_at=now)
        )

        async def job(batch: Batch) -> None:
            await batch.conn.execute(statement)

        await self.write(job)

    async def finish(
        self, uow: UnitOfWork, task_id: str, worker: str | None, values: dict[str, Any]
    ) -> bool:
        """Move a task to a terminal state if ``worker`` still holds it (``None``: a task nobody
        runs, e.g. a queued one being cancelled). False when someone else owns it now."""
        parameters = {**values, "lease_owner": None, "lease_expires_at": None, "b_id": task_id}
        conn = batch_of(uow).conn
        if worker is None:
            result = await conn.execute(_FINISH_WAITING, parameters)
        else:
            result = await conn.execute(_FINISH_HELD, parameters | {"b_worker": worker})
        return bool(result.rowcount)

    async def request_cancel(self, task_id: str, now: float) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(
                tasks.update()
                .where(tasks.c.id == task_id, tasks.c.status == "running")
                .values(cancel_requested=True, updated_at=now)
            )

    async def update_waiting(self, task_id: str, values: dict[str, Any]) -> bool:
        """Change a task that is not running yet (e.g. a parked task getting its input)."""
        async with self._engine.begin() as conn:
            result = await conn.execute(
                tasks.update()
                .where(tasks.c.id == task_id, tasks.c.status.in_(WAITING))
                .values(**values)
            )
        return bool(result.rowcount)

    async def delete_older_than(self, cutoff: float) -> int:
        async with self._engine.begin() as conn:
            result = await conn.execute(tasks.delete().where(tasks.c.created_at < cutoff))
        return int(result.rowcount or 0)
