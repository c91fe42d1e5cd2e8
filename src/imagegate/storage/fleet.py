"""The fleet's backlog as the shared database tells it, for ``GET /metrics``."""

from __future__ import annotations

import time

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from imagegate.core.task_model import UNFINISHED
from imagegate.observability.exposition import FleetFigures
from imagegate.storage.tables import tasks, webhook_deliveries


async def read_fleet(engine: AsyncEngine, now: float | None = None) -> FleetFigures:
    """The unfinished tasks by state, the oldest queued task's age and pending webhooks."""
    now = time.time() if now is None else now
    unfinished = tasks.c.status.in_(UNFINISHED)
    async with engine.connect() as conn:
        by_state = await conn.execute(
            sa.select(tasks.c.status, sa.func.count()).where(unfinished).group_by(tasks.c.status)
        )
        # Every unfinished state is reported, at 0 too: a gauge that vanishes cannot alert.
        counts: dict[str, int] = {state: 0 for state in UNFINISHED}
        counts.update({str(state): int(count) for state, count in by_state.all()})
        oldest = await conn.scalar(
            sa.select(sa.func.min(tasks.c.created_at)).where(tasks.c.status == "queued")
        )
        pending = await conn.scalar(
            sa.select(sa.func.count()).where(webhook_deliveries.c.state == "pending")
        )
    return FleetFigures(
        tasks=counts,
        oldest_queued_age=max(0.0, now - oldest) if oldest is not None else 0.0,
        webhooks_pending=int(pending or 0),
    )
