"""The durable task engine: persisted tasks, a worker pool that claims them with leases and
heartbeats, idempotent completion (outputs stored and charged in the completing transaction),
cancellation, progress, webhooks through the outbox, and retention.

Front ends register a handler per task ``kind`` and, optionally, a webhook renderer per front
(``meta["front"]``) that turns a task into the payload their clients expect.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import socket
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Protocol, TypeVar

from imagegate.aio import wait_set
from imagegate.core.assets import AssetService, NewAsset
from imagegate.core.billing import Billing, KeyLimits
from imagegate.core.task_model import PARKED, TaskOutput, TaskRecord, TaskStatus
from imagegate.core.unit_of_work import Committer, UnitOfWork
from imagegate.core.upstream import JobJournal, UpstreamJob, job_from_json, job_to_json
from imagegate.core.usage import UsageRow
from imagegate.core.usage_rows import UsageRowRepository
from imagegate.core.webhooks import WebhookOutbox, WebhookSender
from imagegate.errors import (
    ImagegateError,
    InvalidRequest,
    NotFound,
    RateLimited,
    ServerError,
    StorageUnavailable,
)
from imagegate.observability import metrics, tracing

log = logging.getLogger("imagegate.tasks")
T = TypeVar("T")
STORAGE_RETRY_SECONDS = (0.5, 5.0)
"""First and longest wait before a task retries a blob store that was down."""
LIST_BATCH = 200
"""Rows read per query while listing a front's tasks (the kind is shared by several fronts)."""


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


class TaskRun(JobJournal, Protocol):
    """What a running handler may do besides returning its output. It is also the task's
    :class:`~imagegate.core.upstream.JobJournal`: a handler passes it down to the router, which
    keeps the jobs it submits to task upstreams in the task's row, so that running the task
    again (after a restart, or on another replica) polls them instead of submitting again."""

    task: TaskRecord

    async def progress(self, percent: int) -> None: ...


TaskHandler = Callable[[TaskRecord, TaskRun], Awaitable[TaskOutput]]
WebhookRenderer = Callable[[TaskRecord], dict[str, Any]]


@dataclass(frozen=True, slots=True)
class EngineSettings:
    concurrency: int = 4
    lease_seconds: float = 30.0
    poll_interval: float = 0.5
    max_attempts: int = 3
    retention_seconds: float = 7 * 86400


class TaskEngine:
    """Submits, runs and reports tasks; one instance per process, any number of processes."""

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
        self._committer = committer
        self._billing = billing
        self._limits = limits or self._billing.limits
        self._assets = assets
        self._webhooks = webhooks
        self._outbox = outbox
        self._usage = usage
        self.settings = settings
        # Host and pid in the lease owner tell an operator (and the fleet test) which replica
        # holds a task; the random tail keeps two engines of one process apart.
        host = socket.gethostname()[:32]
        self.worker_id = f"w-{host}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self._handlers: dict[str, TaskHandler] = {}
        self._renderers: dict[str, WebhookRenderer] = {}
        self._running: dict[str, asyncio.Task[None]] = {}
        self._closing = False
        self._wake = asyncio.Event()
        self._loops: list[asyncio.Task[None]] = []

    # --- registration -------------------------------------------------------------------
    def register(self, kind: str, handler: TaskHandler) -> None:
        self._handlers[kind] = handler

    def register_webhook_renderer(self, front: str, renderer: WebhookRenderer) -> None:
        self._renderers[front] = renderer

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
        self._wake.set()
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
        self._wake.set()
        return await self.get(task_id, owner_key_id)

    async def cancel(self, task_id: str, owner_key_id: str) -> TaskRecord:
        """Cancel a waiting task at once; a running one stops at its next heartbeat."""
        task = await self.get(task_id, owner_key_id)
        if task.terminal:
            return task
        now = time.time()
        values = {"status": "canceled", "finished_at": now, "updated_at": now}

        async def cancel(uow: UnitOfWork) -> bool:
            if not await self._store.finish(uow, task_id, None, values):
                return False
            await self._release(uow, task)
            await self._notify(uow, task, now)
            return True

        if await self._committer.run(cancel):
            self._wake_webhooks(task)
            return await self.get(task_id, owner_key_id)
        await self._store.request_cancel(task_id, now)
        running = self._running.get(task_id)
        if running is not None:
            running.cancel()
        return await self.get(task_id, owner_key_id)

    # --- the worker pool ---------------------------------------------------------------
    def start(self) -> None:
        self._loops = [
            asyncio.create_task(self._claim_loop(), name="task-claimer"),
            asyncio.create_task(self._heartbeat_loop(), name="task-heartbeat"),
        ]

    async def close(self) -> None:
        """Stop claiming; running tasks are abandoned, never half-completed nor cancelled:
        their leases end now, so another worker (or this one after a restart) runs them
        again at its next claim."""
        self._closing = True
        for loop in self._loops:
            loop.cancel()
        for running in list(self._running.values()):
            running.cancel()
        await asyncio.gather(*self._loops, *self._running.values(), return_exceptions=True)
        try:
            await self._store.abandon(self.worker_id, time.time())
        finally:
            await self._store.close()

    async def _claim_loop(self) -> None:
        while True:
            try:
                await self.claim_and_start()
            except Exception:
                log.exception("claiming tasks failed")
            await wait_set(self._wake, self.settings.poll_interval)
            self._wake.clear()

    async def claim_and_start(self) -> int:
        """Claim as many tasks as there are free slots and start them; returns how many."""
        free = self.settings.concurrency - len(self._running)
        if free <= 0:
            return 0
        claimed = await self._store.claim(
            self.worker_id, free, time.time(), self.settings.lease_seconds
        )
        for task in claimed:
            runner = asyncio.create_task(self._run(task), name=f"task-{task.id}")
            self._running[task.id] = runner
            runner.add_done_callback(functools.partial(self._finished, task.id))
        return len(claimed)

    def _finished(self, task_id: str, _runner: asyncio.Task[None]) -> None:
        self._running.pop(task_id, None)
        self._wake.set()

    async def _heartbeat_loop(self) -> None:
        interval = self.settings.lease_seconds / 3
        while True:
            await asyncio.sleep(interval)
            try:
                cancelled = await self._store.heartbeat(
                    self.worker_id, list(self._running), time.time(), self.settings.lease_seconds
                )
            except Exception:
                log.exception("task heartbeat failed")
                continue
            for task_id in cancelled:
                runner = self._running.get(task_id)
                if runner is not None:
                    runner.cancel()

    async def _run(self, task: TaskRecord) -> None:
        if task.attempts > self.settings.max_attempts:
            await self._fail(task, ServerError("the task was interrupted too many times"))
            return
        handler = self._handlers.get(task.kind)
        if handler is None:
            await self._fail(task, ServerError(f"no handler for task kind {task.kind!r}"))
            return
        await self._notify_started(task)
        try:
            # Handlers touch the store only to read their inputs, before any upstream call,
            # so running one again after the store came back repeats no upstream work.
            with tracing.span("task.run", **{"imagegate.task_kind": task.kind}):
                output = await self._until_stored(lambda: handler(task, _Run(self, task)))
        except asyncio.CancelledError:
            if not self._closing:  # cancelled by its owner, not abandoned by a stopping server
                await self._cancelled(task)
            raise
        except ImagegateError as exc:
            await self._fail(task, exc)
            return
        except Exception:
            log.exception("task %s failed", task.id)
            await self._fail(task, ServerError("internal error"))
            return
        await self.complete(task, output)

    # --- state changes -----------------------------------------------------------------
    async def complete(self, task: TaskRecord, output: TaskOutput) -> bool:
        """Store outputs, charge and finish in one transaction, only while the lease is ours:
        whoever completes a task first wins, so outputs are stored and charged exactly once."""
        items = [NewAsset(i.data, i.mime_type, i.width, i.height) for i in output.images]
        stored = await self._until_stored(
            lambda: self._assets.write_blobs(items, owner_key_id=task.owner_key_id)
        )
        now = time.time()
        result = {
            **output.result,
            "assets": [asset.id for asset in stored],
            "blobs": [asset.sha256 for asset in stored],
        }
        values = {
            "status": "succeeded",
            "progress": 100,
            "result": result,
            "model": output.model or task.model,
            "finished_at": now,
            "updated_at": now,
        }
        reservation_id = task.reservation_id

        async def complete(uow: UnitOfWork) -> Decimal | None:
            if not await self._store.finish(uow, task.id, self.worker_id, values):
                return None
            self._assets.add_rows(uow, stored, request_id=task.id)
            charged = None
            if reservation_id is not None:
                charged = await self._billing.settle_in(uow, reservation_id, output.cost)
            cost = output.cost if charged is None else charged
            self._usage.add(uow, self._usage_row(task, output, cost, now))
            await self._notify(uow, task, now)
            return cost

        cost = await self._committer.run(complete)
        if cost is None:
            log.warning("task %s was taken over before it completed here", task.id)
            return False
        output.cost = cost
        metrics.cost(output.model or task.model, cost)
        self._wake_webhooks(task)
        return True

    async def _until_stored(self, operation: Callable[[], Awaitable[T]]) -> T:
        """Run ``operation`` until the blob store takes it: a store that is down makes the
        task wait, its lease kept by the heartbeats, and try again; an accepted task is never
        failed nor its output lost for it. Stopping the server cancels the wait."""
        delay, longest = STORAGE_RETRY_SECONDS
        while True:
            try:
                return await operation()
            except StorageUnavailable:
                log.warning("the asset store is unavailable; the task retries in %.1f s", delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, longest)

    def _usage_row(
        self, task: TaskRecord, output: TaskOutput, cost: Decimal, now: float
    ) -> UsageRow:
        return UsageRow(
            request_id=task.id,
            key_id=task.owner_key_id,
            model=output.model or task.model,
            route=f"task:{task.kind}",
            status=200,
            latency_ms=round((now - (task.started_at or now)) * 1000, 3),
            n=len(output.images),
            images=len(output.images),
            input_tokens=output.usage.input_tokens if output.usage else 0,
            output_tokens=output.usage.output_tokens if output.usage else 0,
            cost_usd=cost,
            created_at=now,
        )

    async def _fail(self, task: TaskRecord, error: ImagegateError) -> None:
        now = time.time()
        values = {
            "status": "failed",
            "error": {
                "code": error.code or error.type,
                "message": error.message,
                "status": error.status,
            },
            "finished_at": now,
            "updated_at": now,
        }
        await self._finish(task, values, now)

    async def _cancelled(self, task: TaskRecord) -> None:
        now = time.time()
        values = {"status": "canceled", "finished_at": now, "updated_at": now}
        await asyncio.shield(self._finish(task, values, now))

    async def _finish(self, task: TaskRecord, values: dict[str, Any], now: float) -> None:
        """Fail or cancel a task we hold, giving its reservation back in the same transaction."""

        async def finish(uow: UnitOfWork) -> None:
            if await self._store.finish(uow, task.id, self.worker_id, values):
                await self._release(uow, task)
                await self._notify(uow, task, now)

        await self._committer.run(finish)
        self._wake_webhooks(task)

    async def _release(self, uow: UnitOfWork, task: TaskRecord) -> None:
        if task.reservation_id is not None:
            await self._billing.release_in(uow, task.reservation_id)

    async def _notify_started(self, task: TaskRecord) -> None:
        """Tell the client's webhook that its task started (once, not on a re-claim)."""
        if task.webhook_url and task.attempts == 1:
            now = time.time()

            async def started(uow: UnitOfWork) -> None:
                await self._notify(uow, task, now)

            await self._committer.run(started)
            self._wake_webhooks(task)

    @property
    def closing(self) -> bool:
        """Whether the engine is stopping (its running tasks will run again elsewhere)."""
        return self._closing

    async def set_upstream_jobs(self, task: TaskRecord, jobs: dict[str, Any]) -> None:
        await self._store.set_upstream_jobs(task.id, self.worker_id, jobs, time.time())

    async def set_progress(self, task: TaskRecord, percent: int) -> None:
        await self._store.set_progress(
            task.id, self.worker_id, max(0, min(99, percent)), time.time()
        )

    async def _notify(self, uow: UnitOfWork, task: TaskRecord, now: float) -> None:
        """Queue the webhook of ``task`` as it is now in ``uow`` (read only when it has a
        webhook); ``meta["webhook_statuses"]``, when a front end sets it, lists the statuses
        its clients want to hear about (e.g. only terminal ones)."""
        if not task.webhook_url:
            return
        task = await self._store.fetch(uow, task.id)
        wanted = task.meta.get("webhook_statuses")
        if not task.webhook_url or (wanted is not None and task.status not in wanted):
            return
        renderer = self._renderers.get(str(task.meta.get("front", "")))
        payload = renderer(task) if renderer else _default_payload(task)
        await self._outbox.enqueue(
            uow,
            url=task.webhook_url,
            secret=task.webhook_secret,
            payload=payload,
            task_id=task.id,
            now=now,
        )

    def _wake_webhooks(self, task: TaskRecord) -> None:
        """Have the sender look for deliveries now, when ``task`` may have queued one."""
        if self._webhooks is not None and task.webhook_url:
            self._webhooks.wake()

    async def sweep(self, now: float | None = None) -> int:
        """Delete tasks past retention (their assets go with the asset sweep)."""
        cutoff = (time.time() if now is None else now) - self.settings.retention_seconds
        return await self._store.delete_older_than(cutoff)


class _Run:
    __slots__ = ("_engine", "_jobs", "task")

    def __init__(self, engine: TaskEngine, task: TaskRecord) -> None:
        self._engine = engine
        self.task = task
        self._jobs: dict[str, Any] = dict(task.upstream_jobs or {})

    async def progress(self, percent: int) -> None:
        await self._engine.set_progress(self.task, percent)

    def known(self, slot: str) -> UpstreamJob | None:
        data = self._jobs.get(slot)
        if not isinstance(data, dict):
            return None
        try:
            return job_from_json(data)
        except (KeyError, TypeError, ValueError):
            log.warning("task %s: unreadable upstream job in %s", self.task.id, slot)
            return None

    async def accepted(self, slot: str, job: UpstreamJob) -> None:
        self._jobs[slot] = job_to_json(job)
        try:
            await self._engine.set_upstream_jobs(self.task, dict(self._jobs))
        except Exception:
            # The job runs on; only a run after a restart would submit it again.
            log.exception("task %s: could not keep upstream job %s", self.task.id, job.id)

    def forget(self, slot: str) -> None:
        self._jobs.pop(slot, None)

    def keeps_jobs(self) -> bool:
        return self._engine.closing


def _default_payload(task: TaskRecord) -> dict[str, Any]:
    return {
        "id": task.id,
        "status": task.status,
        "progress": task.progress,
        "model": task.model,
        "error": task.error,
        "assets": task.asset_ids,
    }
