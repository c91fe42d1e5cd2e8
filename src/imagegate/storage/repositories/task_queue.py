"""Counts of queued tasks in SQL, for the Midjourney queue gauge:
:class:`~imagegate.core.midjourney.intake.TaskQueueRepository`."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from imagegate.storage.tables import tasks


class SqlTaskQueueRepository:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def waiting(self, key_id: str, *, all_up_to: int, own_up_to: int) -> tuple[int, int]:
        queued = tasks.c.status == "queued"
        mine = queued & (tasks.c.owner_key_id == key_id)
        query = sa.select(_bounded(queued, all_up_to), _bounded(mine, own_up_to))
        async with self._engine.connect() as conn:
            waiting, own = (await conn.execute(query)).one()
        return int(waiting), int(own)


def _bounded(condition: sa.ColumnElement[bool], limit: int) -> sa.ScalarSelect[int]:
    """``min(limit, number of tasks matching condition)``, reading at most ``limit`` rows."""
    rows = sa.select(sa.literal(1)).select_from(tasks).where(condition).limit(limit)
    return sa.select(sa.func.count()).select_from(rows.subquery()).scalar_subquery()
