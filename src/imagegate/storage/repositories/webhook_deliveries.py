"""The webhook sender's side of the outbox in SQL:
:class:`~imagegate.core.webhooks.WebhookDeliveryRepository`."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from imagegate.core.webhooks import Delivery
from imagegate.storage.claims import claim_update
from imagegate.storage.tables import webhook_deliveries as deliveries


class SqlWebhookDeliveryRepository:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def claim_due(self, now: float, limit: int, lease_expires_at: float) -> list[Delivery]:
        earlier = deliveries.alias("earlier")
        waits = (
            sa.exists()
            .where(
                earlier.c.task_id == deliveries.c.task_id,
                earlier.c.state == "pending",
                sa.or_(
                    earlier.c.created_at < deliveries.c.created_at,
                    sa.and_(
                        earlier.c.created_at == deliveries.c.created_at,
                        earlier.c.id < deliveries.c.id,
                    ),
                ),
            )
            .correlate(deliveries)
        )
        ready = sa.and_(
            deliveries.c.state == "pending",
            deliveries.c.due_at <= now,
            sa.or_(deliveries.c.lease_expires_at.is_(None), deliveries.c.lease_expires_at < now),
            sa.or_(deliveries.c.task_id.is_(None), ~waits),
        )
        candidates = (
            sa.select(deliveries.c.id).where(ready).order_by(deliveries.c.due_at).limit(limit)
        )
        statement = claim_update(
            deliveries,
            candidates,
            {"lease_expires_at": lease_expires_at},
            postgres=self._engine.dialect.name == "postgresql",
            still_claimable=ready,
        )
        async with self._engine.begin() as conn:
            rows = (await conn.execute(statement)).mappings().all()
        return [
            Delivery(
                id=row["id"],
                message_id=row["message_id"],
                task_id=row["task_id"],
                url=row["url"],
                secret=row["secret"],
                payload=row["payload"],
                attempt=row["attempt"],
                created_at=row["created_at"],
            )
            for row in rows
        ]

    async def finish(
        self,
        delivery: Delivery,
        *,
        delivered: bool,
        status_code: int | None,
        error: str | None,
        now: float,
        retry_due_at: float | None,
    ) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(
                deliveries.update()
                .where(deliveries.c.id == delivery.id)
                .values(
                    state="delivered" if delivered else "failed",
                    status_code=status_code,
                    error=error,
                    finished_at=now,
                )
            )
            if retry_due_at is not None:
                await conn.execute(
                    deliveries.insert().values(
                        message_id=delivery.message_id,
                        task_id=delivery.task_id,
                        url=delivery.url,
                        secret=delivery.secret,
                        payload=delivery.payload,
                        attempt=delivery.attempt + 1,
                        state="pending",
                        due_at=retry_due_at,
                        created_at=delivery.created_at,
                    )
                )
