"""The core's port to task rows, shared by the engine, its runner and its completion."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from imagegate.core.task_model import TaskRecord
from imagegate.core.unit_of_work import UnitOfWork


class TaskRepository(Protocol):
    """Every query the task engine makes on task rows; callers pass times so tests can move
    the clock. Writes of one row commit on their own (group-committed with the process's other
    writes to tasks, so two can never lock rows in opposite orders); those that must commit
    with other writes (a finish with its charge, usage row and webhook) take the caller's
    unit of work."""

    async def insert(self, values: dict[str, Any]) -> TaskRecord:
        """Store a new task (``values``: its columns); returns its record."""
        ...

    async def fetch(self, uow: UnitOfWork, task_id: str) -> TaskRecord:
        """The task as it is in ``uow`` (it exists)."""
        ...

    async def get(self, task_id: str) -> TaskRecord | None: ...

    async def get_many(self, ids: Sequence[str], owner_key_id: str) -> list[TaskRecord]:
        """The owner's tasks among ``ids``, in their order; missing ones left out."""
        ...

    async def list_owned(
        self, owner_key_id: str, kind: str, *, before: tuple[float, str] | None, limit: int
    ) -> list[TaskRecord]:
        """The owner's tasks of ``kind``, newest first, strictly older than ``before``
        (``(created_at, id)`` of the last one a previous page showed)."""
        ...

    async def count_active(self, owner_key_id: str) -> int:
        """How many of the owner's tasks are unfinished."""
        ...

    async def submitted_by(self, owner_key_id: str, request_id: str) -> list[str]:
        """The ids of the owner's tasks whose hold ``request_id`` made."""
        ...

    async def claim(self, worker: str, limit: int, now: float, lease: float) -> list[TaskRecord]:
        """Take up to ``limit`` queued tasks, or running ones whose lease has run out, oldest
        first, leased to ``worker`` for ``lease`` seconds."""
        ...

    async def heartbeat(
        self, worker: str, task_ids: Sequence[str], now: float, lease: float
    ) -> set[str]:
        """Extend our leases; returns the ids whose cancellation was requested."""
        ...

    async def abandon(self, worker: str, now: float) -> int:
        """End every lease ``worker`` holds on a running task at once (a server stopping)."""
        ...

    async def set_progress(self, task_id: str, worker: str, progress: int, now: float) -> None:
        """Record progress of a task ``worker`` runs (only while its lease is held)."""
        ...

    async def set_upstream_jobs(
        self, task_id: str, worker: str, jobs: dict[str, Any], now: float
    ) -> None:
        """Keep the upstream jobs of a task ``worker`` runs (only while its lease is held)."""
        ...

    async def finish(
        self, uow: UnitOfWork, task_id: str, worker: str | None, values: dict[str, Any]
    ) -> bool:
        """Move a task to a terminal state in ``uow`` if ``worker`` still holds it (``None``:
        a waiting task nobody runs). False when someone else owns it now."""
        ...

    async def request_cancel(self, task_id: str, now: float) -> None:
        """Ask the worker running the task to stop (it sees this at its next heartbeat)."""
        ...

    async def update_waiting(self, task_id: str, values: dict[str, Any]) -> bool:
        """Change a task that is not running yet; False when it is not waiting any more."""
        ...

    async def delete_older_than(self, cutoff: float) -> int:
        """Delete tasks created before ``cutoff``; returns how many."""
        ...

    async def close(self) -> None:
        """Finish the writes still queued."""
        ...
