"""The task engine's worker pool: claims tasks with leases, keeps the leases with heartbeats,
runs each task on its kind's handler, and hands the outcome to the
:class:`~imagegate.core.task_completion.TaskCompletion`."""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import socket
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from imagegate.aio import wait_set
from imagegate.core.task_completion import TaskCompletion, until_stored
from imagegate.core.task_model import TaskOutput, TaskRecord
from imagegate.core.task_rows import TaskRepository
from imagegate.core.upstream import JobJournal, UpstreamJob, job_from_json, job_to_json
from imagegate.errors import ImagegateError, ServerError
from imagegate.observability import tracing

log = logging.getLogger("imagegate.tasks")


class TaskRun(JobJournal, Protocol):
    """What a running handler may do besides returning its output. It is also the task's
    :class:`~imagegate.core.upstream.JobJournal`: a handler passes it down to the router, which
    keeps the jobs it submits to task upstreams in the task's row, so that running the task
    again (after a restart, or on another replica) polls them instead of submitting again."""

    task: TaskRecord

    async def progress(self, percent: int) -> None: ...


TaskHandler = Callable[[TaskRecord, TaskRun], Awaitable[TaskOutput]]


@dataclass(frozen=True, slots=True)
class EngineSettings:
    concurrency: int = 4
    lease_seconds: float = 30.0
    poll_interval: float = 0.5
    max_attempts: int = 3
    retention_seconds: float = 7 * 86400


class TaskRunner:
    """Claims and runs tasks in this process; any number of processes run one each."""

    def __init__(
        self,
        store: TaskRepository,
        completion: TaskCompletion,
        settings: EngineSettings,
        handlers: dict[str, TaskHandler],
    ) -> None:
        """``handlers``: the engine's, by task kind (registered before :meth:`start`)."""
        self._store = store
        self._completion = completion
        self.settings = settings
        self._handlers = handlers
        # Host and pid in the lease owner tell an operator (and the fleet test) which replica
        # holds a task; the random tail keeps two engines of one process apart.
        host = socket.gethostname()[:32]
        self.worker_id = f"w-{host}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self._running: dict[str, asyncio.Task[None]] = {}
        self._closing = False
        self._wake = asyncio.Event()
        self._loops: list[asyncio.Task[None]] = []

    @property
    def closing(self) -> bool:
        """Whether the runner is stopping (its running tasks will run again elsewhere)."""
        return self._closing

    def wake(self) -> None:
        """Look for claimable tasks now (one was queued)."""
        self._wake.set()

    def cancel_running(self, task_id: str) -> None:
        """Stop the run of ``task_id`` here, if it runs here."""
        running = self._running.get(task_id)
        if running is not None:
            running.cancel()

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
        await self._store.abandon(self.worker_id, time.time())

    async def _claim_loop(self) -> None:
        while True:
            try:
                await self.claim_and_start()
            except Exception:
                log.exception("claiming tasks failed")
            await wait_set(self._wake, self.settings.poll_interval)
            self._wake.clear()

    async def claim_and_start(self) -> int:
        """Claim as many tasks as there are free slots and start them; returns how many
        were started."""
        free = self.settings.concurrency - len(self._running)
        if free <= 0:
            return 0
        claimed = await self._store.claim(
            self.worker_id, free, time.time(), self.settings.lease_seconds
        )
        started = 0
        for task in claimed:
            if task.id in self._running:
                # Our own lease ran out while we ran it (the loop stalled past a heartbeat):
                # the claim took it back, and the run we have goes on; a second would call
                # the upstream again.
                continue
            runner = asyncio.create_task(self._run(task), name=f"task-{task.id}")
            self._running[task.id] = runner
            runner.add_done_callback(functools.partial(self._finished, task.id))
            started += 1
        return started

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
                self.cancel_running(task_id)

    async def _run(self, task: TaskRecord) -> None:
        completion, worker = self._completion, self.worker_id
        if task.attempts > self.settings.max_attempts:
            error = ServerError("the task was interrupted too many times")
            await completion.fail(task, error, worker)
            return
        handler = self._handlers.get(task.kind)
        if handler is None:
            error = ServerError(f"no handler for task kind {task.kind!r}")
            await completion.fail(task, error, worker)
            return
        await completion.notify_started(task)
        try:
            # Handlers touch the store only to read their inputs, before any upstream call,
            # so running one again after the store came back repeats no upstream work.
            with tracing.span("task.run", **{"imagegate.task_kind": task.kind}):
                output = await until_stored(lambda: handler(task, _Run(self, task)))
        except asyncio.CancelledError:
            if not self._closing:  # cancelled by its owner, not abandoned by a stopping server
                await completion.cancelled(task, worker)
            raise
        except ImagegateError as exc:
            await completion.fail(task, exc, worker)
            return
        except Exception:
            log.exception("task %s failed", task.id)
            await completion.fail(task, ServerError("internal error"), worker)
            return
        await completion.complete(task, output, worker)

    async def set_upstream_jobs(self, task: TaskRecord, jobs: dict[str, Any]) -> None:
        await self._store.set_upstream_jobs(task.id, self.worker_id, jobs, time.time())

    async def set_progress(self, task: TaskRecord, percent: int) -> None:
        await self._store.set_progress(
            task.id, self.worker_id, max(0, min(99, percent)), time.time()
        )


class _Run:
    __slots__ = ("_jobs", "_runner", "task")

    def __init__(self, runner: TaskRunner, task: TaskRecord) -> None:
        self._runner = runner
        self.task = task
        self._jobs: dict[str, Any] = dict(task.upstream_jobs or {})

    async def progress(self, percent: int) -> None:
        await self._runner.set_progress(self.task, percent)

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
            await self._runner.set_upstream_jobs(self.task, dict(self._jobs))
        except Exception:
            # The job runs on; only a run after a restart would submit it again.
            log.exception("task %s: could not keep upstream job %s", self.task.id, job.id)

    def forget(self, slot: str) -> None:
        self._jobs.pop(slot, None)

    def keeps_jobs(self) -> bool:
        return self._runner.closing
