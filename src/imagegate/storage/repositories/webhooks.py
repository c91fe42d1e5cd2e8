"""SQL of the webhook outbox (:class:`~imagegate.core.webhooks.WebhookOutbox`)."""

from __future__ import annotations

import secrets

import orjson

from imagegate.core.unit_of_work import UnitOfWork
from imagegate.storage.group_commit import batch_of
from imagegate.storage.tables import webhook_deliveries as deliveries


class SqlWebhookOutbox:
    """Queues deliveries in ``webhook_deliveries``; the row is written at once, so deliveries
    of one transaction keep the order they were queued in."""

    async def enqueue(
        self,
        uow: UnitOfWork,
        *,
        url: str,
        secret: str | None,
        payload: dict[str, object],
        task_id: str | None,
        now: float,
    ) -> str:
        message_id = "msg_" + secrets.token_hex(12)
        await batch_of(uow).conn.execute(
            deliveries.insert().values(
                message_id=message_id,
                task_id=task_id,
                url=url,
                secret=secret,
                payload=orjson.dumps(payload).decode(),
                attempt=1,
                state="pending",
                due_at=now,
                created_at=now,
            )
        )
        return message_id
