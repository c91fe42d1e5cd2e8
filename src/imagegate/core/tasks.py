"""The durable task engine: persisted tasks, a worker pool that claims them with leases and
heartbeats (:mod:`~imagegate.core.task_runner`), idempotent completion, outputs stored and
charged in the completing unit of work (:mod:`~imagegate.core.task_completion`),
cancellation, progress, webhooks through the outbox, and retention.

Front ends register a handler per task ``kind`` and, optionally, a webhook renderer per front
(``meta["front"]``) that turns a task into the payload their clients expect.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from imagegate.core.assets import AssetService
from imagegate.core.billing import Billing, KeyLimits
from imagegate.core.task_completion import TaskCompletion, WebhookRenderer
from imagegate.core.task_model import PARKED, TaskOutput, TaskRecord, TaskStatus
from imagegate.core.task_rows import TaskRepository
from imagegate.core.task_runner import EngineSettings, TaskHandler, TaskRun, TaskRunner
from imagegate.core.unit_of_work import Committer
from imagegate.core.usage import UsageRowRepository
from imagegate.core.webhooks import WebhookOutbox, WebhookSender
from imagegate.errors import InvalidRequest, NotFound, RateLimited, ServerError

__all__ = [
    "EngineSettings",
    "TaskEngine",
    "TaskHandler",
    "TaskRepository",
    "TaskRun",
    "WebhookRenderer",
]

LIST_BATCH = 200
"""Rows read per query while listing a front's tasks (the kind is shared by several fronts)."""


class TaskEngine:
    """Submits, runs and reports tasks; one instance per process, any number of processes.
    Runs tasks with its :class:`~imagegate.core.task_runner.TaskRunner` and ends them with its
    :class:`~imagegate.core.task_completion.TaskCompletion`."""

    def __init__(
        self,
        store: TaskRepository,
        committer: Committer,
        assets: AssetService,
        webhooks: WebhookSender | None,
        settings: EngineSettings,
        billing: Billing,
        *,
        outbox: WebhookOutbox,
        usage: UsageRowRepository,
        limits: Callable[[str], Awaitable[KeyLimits]] | None = None,
    ) -> None:
        """``committer`` runs the transactions that finish a task (its charge or release,
        usage row and webhook delivery join them); ``limits``: a key's limits, e.g.
        :meth:`AccessControl.limits_of` (cached); by default read from ``billing`` each time."""
        self._store = store
        self._limits = limits or billing.limits
        self._handlers: dict[str, TaskHandler] = {}
        self._completion = TaskCompletion(
            store, committer, assets, billing, webhooks, outbox=outbox, usage=usage
        )
        self._runner = TaskRunner(store, self._completion, settings, self._handlers)
        self.worker_id = self._runner.worker_id

    @property
    def settings(self) -> EngineSettings:
        return self._runner.settings

    @settings.setter
    def settings(self, settings: EngineSettings) -> None:
        """New settings take effect at the next claim."""
        self._runner.settings = settings

    # --- registration -------------------------------------------------------------------
    def register(self, kind: str, handler: TaskHandler) -> None:
        self._handlers[kind] = handler

    def register_webhook_renderer(self, front: str, renderer: WebhookRenderer) -> None:
        self._completion.register_webhook_renderer(front, renderer)

    # --- client-facing operations -------------------------------------------------------
    async def submit(
        self,
        *,
        kind: str,
        owner_key_id: str,
        request: dict[str, Any],
        meta: dict[str, Any],
        model: str | None = None,
        parent_id: str | None = None,
        webhook_url: str | None = None,
        webhook_secret: str | None = None,
        status: TaskStatus = "queued",
        task_id: str | None = None,
        reservation_id: str | None = None,
    ) -> TaskRecord:
        """Persist a task; ``status="parked"`` parks it until :meth:`resume` gives its input.

        ``reservation_id`` is the hold made for it (``ImageService.prepare``): settled when the
        task completes, released when it fails or is cancelled. A key with ``max_concurrent``
        may have that many unfinished tasks; one more is a 429."""
        if kind not in self._handlers:
            raise ServerError(f"no handler for task kind {kind!r}")
        await self._check_active(owner_key_id)
        now = time.time()
        task = await self._store.insert(
            {
                "id": task_id or str(uuid.uuid4()),
                "kind": kind,
                "owner_key_id": owner_key_id,
                "model": model,
                "status": status,
                "progress": 0,
                "request": request,
                "meta": meta,
                "parent_id": parent_id,
                "webhook_url": webhook_url,
                "webhook_secret": webhook_secret,
                "reservation_id": reservation_id,
                "created_at": now,
                "updated_at": now,
            }
        )
        self._runner.wake()
        return task

    async def _check_active(self, owner_key_id: str) -> None:
        limit = (await self._limits(owner_key_id)).max_concurrent
        if limit is not None and await self._store.count_active(owner_key_id) >= limit:
            raise RateLimited(
                f"this key already has {limit} unfinished tasks (its limit)", retry_after=5
            )

    async def get(self, task_id: str, owner_key_id: str | None) -> TaskRecord:
        """The task; another key's task is as absent as a missing one (404)."""
        task = await self._store.get(task_id)
        if task is None or (owner_key_id is not None and task.owner_key_id != owner_key_id):
            raise NotFound(f"no such task: {task_id!r}", param="id", code="task_not_found")
        return task

    async def get_many(self, ids: Sequence[str], owner_key_id: str) -> list[TaskRecord]:
        return await self._store.get_many(ids, owner_key_id)

    async def submitted_by(self, owner_key_id: str, request_id: str) -> list[str]:
        """The ids of the owner's tasks whose hold ``request_id`` made (whatever their
        status)."""
        return await self._store.submitted_by(owner_key_id, request_id)

    async def list_owned(
        self,
        owner_key_id: str,
        kind: str,
        *,
        shown: Callable[[TaskRecord], bool],
        before: tuple[float, str] | None = None,
        limit: int = 100,
    ) -> tuple[list[TaskRecord], bool]:
        """Up to ``limit`` of the owner's tasks of ``kind`` that ``shown`` keeps (a front's
        own), newest first, older than the cursor ``before``; and whether more follow."""
        found: list[TaskRecord] = []
        while True:
            page = await self._store.list_owned(owner_key_id, kind, before=before, limit=LIST_BATCH)
            for task in page:
                if shown(task):
                    if len(found) == limit:
                        return found, True
                    found.append(task)
            if len(page) < LIST_BATCH:
                return found, False
            before = (page[-1].created_at, page[-1].id)

    async def resume(
        self,
        task_id: str,
        owner_key_id: str,
        request: dict[str, Any],
        meta: dict[str, Any],
        *,
        reservation_id: str | None = None,
    ) -> TaskRecord:
        """Give a parked task its input (and the hold made for it, if any) and queue it."""
        task = await self.get(task_id, owner_key_id)
        if task.status != PARKED:
            raise InvalidRequest(f"task {task_id!r} is not waiting for input", param="taskId")
        now = time.time()
        values = {"status": "queued", "request": request, "meta": meta, "updated_at": now}
        if reservation_id is not None:
            values["reservation_id"] = reservation_id
        if not await self._store.update_waiting(task_id, values):
            raise InvalidRequest(f"task {task_id!r} is not waiting for input", param="taskId")
        self._runner.wake()
        return await self.get(task_id, owner_key_id)

    async def cancel(self, task_id: str, owner_key_id: str) -> TaskRecord:
        """Cancel a waiting task at once; a running one stops at its next heartbeat."""
        task = await self.get(task_id, owner_key_id)
        if task.terminal:
            return task
        if await self._completion.cancel_waiting(task):
            return await self.get(task_id, owner_key_id)
        await self._store.request_cancel(task_id, time.time())
        self._runner.cancel_running(task_id)
        return await self.get(task_id, owner_key_id)

    # --- the worker pool ---------------------------------------------------------------
    def start(self) -> None:
        self._runner.start()

    async def close(self) -> None:
        """Stop claiming; running tasks are abandoned, never half-completed nor cancelled:
        their leases end now, so another worker (or this one after a restart) runs them
        again at its next claim."""
        try:
            await self._runner.close()
        finally:
            await self._store.close()

    async def claim_and_start(self) -> int:
        """Claim as many tasks as there are free slots and start them; returns how many."""
        return await self._runner.claim_and_start()

    async def complete(self, task: TaskRecord, output: TaskOutput) -> bool:
        """Store outputs, charge and finish in one transaction, only while the lease is ours:
        whoever completes a task first wins, so outputs are stored and charged exactly once."""
        return await self._completion.complete(task, output, self.worker_id)

    @property
    def closing(self) -> bool:
        """Whether the engine is stopping (its running tasks will run again elsewhere)."""
        return self._runner.closing

    async def set_upstream_jobs(self, task: TaskRecord, jobs: dict[str, Any]) -> None:
        await self._runner.set_upstream_jobs(task, jobs)

    async def set_progress(self, task: TaskRecord, percent: int) -> None:
        await self._runner.set_progress(task, percent)

    async def sweep(self, now: float | None = None) -> int:
        """Delete tasks past retention (their assets go with the asset sweep)."""
        cutoff = (time.time() if now is None else now) - self.settings.retention_seconds
        return await self._store.delete_older_than(cutoff)
