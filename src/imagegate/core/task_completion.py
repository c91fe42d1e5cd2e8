"""How a task ends, exactly once: its outputs stored and charged, or its hold given back, its
usage row written and its webhook queued, all in the one unit of work that moves its row to a
terminal state (and only while the caller still owns the task)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any, TypeVar

from imagegate.core.assets import AssetService, NewAsset
from imagegate.core.billing import Billing
from imagegate.core.task_model import TaskOutput, TaskRecord
from imagegate.core.task_rows import TaskRepository
from imagegate.core.unit_of_work import Committer, UnitOfWork
from imagegate.core.usage import UsageRow, UsageRowRepository
from imagegate.core.webhooks import WebhookOutbox, WebhookSender
from imagegate.errors import ImagegateError, StorageUnavailable
from imagegate.observability import metrics

log = logging.getLogger("imagegate.tasks")
T = TypeVar("T")
STORAGE_RETRY_SECONDS = (0.5, 5.0)
"""First and longest wait before a task retries a blob store that was down."""
WebhookRenderer = Callable[[TaskRecord], dict[str, Any]]


async def until_stored(operation: Callable[[], Awaitable[T]]) -> T:
    """Run ``operation`` until the blob store takes it: a store that is down makes the task
    wait, its lease kept by the heartbeats, and try again; an accepted task is never failed nor
    its output lost for it. Stopping the server cancels the wait."""
    delay, longest = STORAGE_RETRY_SECONDS
    while True:
        try:
            return await operation()
        except StorageUnavailable:
            log.warning("the asset store is unavailable; the task retries in %.1f s", delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, longest)


class TaskCompletion:
    """Completes, fails and cancels tasks (charge, store, notify); one per engine."""

    def __init__(
        self,
        store: TaskRepository,
        committer: Committer,
        assets: AssetService,
        billing: Billing,
        webhooks: WebhookSender | None,
        *,
        outbox: WebhookOutbox,
        usage: UsageRowRepository,
    ) -> None:
        self._store = store
        self._committer = committer
        self._assets = assets
        self._billing = billing
        self._webhooks = webhooks
        self._outbox = outbox
        self._usage = usage
        self._renderers: dict[str, WebhookRenderer] = {}

    def register_webhook_renderer(self, front: str, renderer: WebhookRenderer) -> None:
        self._renderers[front] = renderer

    async def complete(self, task: TaskRecord, output: TaskOutput, worker: str) -> bool:
        """Store outputs, charge and finish in one transaction, only while ``worker`` holds
        the lease: whoever completes a task first wins, so outputs are stored and charged
        exactly once."""
        items = [NewAsset(i.data, i.mime_type, i.width, i.height) for i in output.images]
        stored = await until_stored(
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
            if not await self._store.finish(uow, task.id, worker, values):
                return None
            self._assets.add_rows(uow, stored, request_id=task.id)
            charged = None
            if reservation_id is not None:
                charged = await self._billing.settle_in(uow, reservation_id, output.cost)
            cost = output.cost if charged is None else charged
            self._usage.add(uow, _usage_row(task, output, cost, now))
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

    async def fail(self, task: TaskRecord, error: ImagegateError, worker: str) -> None:
        """End a task ``worker`` holds as failed with ``error``, giving its hold back."""
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
        await self._finish(task, worker, values, now)

    async def cancelled(self, task: TaskRecord, worker: str) -> None:
        """End a task ``worker`` holds as cancelled (its owner asked), giving its hold back;
        shielded: the run being cancelled must not cut it short."""
        now = time.time()
        values = {"status": "canceled", "finished_at": now, "updated_at": now}
        await asyncio.shield(self._finish(task, worker, values, now))

    async def cancel_waiting(self, task: TaskRecord) -> bool:
        """Cancel ``task`` if no worker runs it yet, giving its hold back; False when it is
        running (or finished) by now."""
        now = time.time()
        values = {"status": "canceled", "finished_at": now, "updated_at": now}

        async def cancel(uow: UnitOfWork) -> bool:
            if not await self._store.finish(uow, task.id, None, values):
                return False
            await self._release(uow, task)
            await self._notify(uow, task, now)
            return True

        if not await self._committer.run(cancel):
            return False
        self._wake_webhooks(task)
        return True

    async def _finish(
        self, task: TaskRecord, worker: str, values: dict[str, Any], now: float
    ) -> None:
        """Fail or cancel a task we hold, giving its reservation back in the same transaction."""

        async def finish(uow: UnitOfWork) -> None:
            if await self._store.finish(uow, task.id, worker, values):
                await self._release(uow, task)
                await self._notify(uow, task, now)

        await self._committer.run(finish)
        self._wake_webhooks(task)

    async def _release(self, uow: UnitOfWork, task: TaskRecord) -> None:
        if task.reservation_id is not None:
            await self._billing.release_in(uow, task.reservation_id)

    async def notify_started(self, task: TaskRecord) -> None:
        """Tell the client's webhook that its task started (once, not on a re-claim)."""
        if task.webhook_url and task.attempts == 1:
            now = time.time()

            async def started(uow: UnitOfWork) -> None:
                await self._notify(uow, task, now)

            await self._committer.run(started)
            self._wake_webhooks(task)

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


def _usage_row(task: TaskRecord, output: TaskOutput, cost: Decimal, now: float) -> UsageRow:
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


def _default_payload(task: TaskRecord) -> dict[str, Any]:
    return {
        "id": task.id,
        "status": task.status,
        "progress": task.progress,
        "model": task.model,
        "error": task.error,
        "assets": task.asset_ids,
    }
