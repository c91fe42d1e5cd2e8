"""The console's read queries over assets, usage, tasks and webhook deliveries (the SQL behind
:class:`~imagegate.core.console_views.ConsoleViewRepository`)."""

from __future__ import annotations

from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from imagegate.core.console_views import Delivery, GalleryRow, UsageBucket
from imagegate.core.task_model import TaskRecord
from imagegate.storage.tables import assets, tasks, usage, webhook_deliveries
from imagegate.storage.task_store import to_record


class SqlConsoleViewRepository:
    """Read-only queries; SQLite and PostgreSQL alike."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def gallery(
        self, owner_key_id: str, *, limit: int, offset: int
    ) -> tuple[list[GalleryRow], int]:
        a, u, t = assets.c, usage.c, tasks.c
        query = (
            sa.select(
                a.id, a.content_type, a.width, a.height, a.created_at, a.prompt, a.request_id,
                u.model, u.cost_usd, u.images, u.route,
                t.id.label("task_id"), t.parent_id, t.meta, t.request, t.model.label("task_model"),
            )
            .select_from(
                assets.outerjoin(usage, u.request_id == a.request_id).outerjoin(
                    tasks, t.id == a.request_id
                )
            )
            .where(a.owner_key_id == owner_key_id)
            .order_by(a.created_at.desc(), a.id)
            .limit(limit)
            .offset(offset)
        )  # fmt: skip
        count = sa.select(sa.func.count()).select_from(assets).where(a.owner_key_id == owner_key_id)
        async with self._engine.connect() as conn:
            rows = (await conn.execute(query)).mappings().all()
            total = int((await conn.execute(count)).scalar_one())
        return [_gallery_row(row) for row in rows], total

    async def tasks(self, owner_key_id: str | None, *, limit: int, offset: int) -> list[TaskRecord]:
        query = tasks.select().order_by(tasks.c.created_at.desc()).limit(limit).offset(offset)
        if owner_key_id is not None:
            query = query.where(tasks.c.owner_key_id == owner_key_id)
        async with self._engine.connect() as conn:
            rows = (await conn.execute(query)).mappings().all()
        return [to_record(row) for row in rows]

    async def usage_buckets(self, start: float, key_id: str | None) -> list[UsageBucket]:
        c = usage.c
        if self._engine.dialect.name == "postgresql":
            day: sa.ColumnElement[str] = sa.func.to_char(
                sa.func.to_timestamp(c.created_at), "YYYY-MM-DD"
            )
        else:
            day = sa.func.date(c.created_at, "unixepoch")
        query = (
            sa.select(
                day.label("day"),
                c.model,
                c.key_id,
                sa.func.count().label("requests"),
                sa.func.coalesce(sa.func.sum(c.images), 0).label("images"),
                sa.func.coalesce(sa.func.sum(c.cost_usd), 0).label("cost_usd"),
                sa.func.sum(sa.case((c.status >= 400, 1), else_=0)).label("errors"),
            )
            .where(c.created_at >= start, *([c.key_id == key_id] if key_id else []))
            .group_by(day, c.model, c.key_id)
        )
        async with self._engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [
            UsageBucket(
                str(row_day),
                model,
                key,
                int(requests),
                int(images),
                Decimal(cost),
                int(errors or 0),
            )
            for row_day, model, key, requests, images, cost, errors in rows
        ]

    async def cost_of(self, request_id: str) -> Decimal | None:
        query = sa.select(sa.func.sum(usage.c.cost_usd)).where(usage.c.request_id == request_id)
        async with self._engine.connect() as conn:
            value = (await conn.execute(query)).scalar_one_or_none()
        return Decimal(value) if value is not None else None

    async def deliveries(self, task_id: str) -> list[Delivery]:
        d = webhook_deliveries.c
        query = (
            sa.select(d.attempt, d.state, d.status_code, d.error, d.url, d.created_at)
            .where(d.task_id == task_id)
            .order_by(d.created_at, d.id)
        )
        async with self._engine.connect() as conn:
            rows = (await conn.execute(query)).mappings().all()
        return [Delivery(**dict(row)) for row in rows]


def _gallery_row(row: sa.RowMapping) -> GalleryRow:
    return GalleryRow(
        asset_id=row["id"],
        content_type=row["content_type"],
        width=row["width"],
        height=row["height"],
        created_at=row["created_at"],
        prompt=row["prompt"],
        request_model=row["model"],
        request_cost_usd=row["cost_usd"],
        request_images=row["images"],
        route=row["route"],
        task_id=row["task_id"],
        parent_id=row["parent_id"],
        meta=row["meta"],
        request=row["request"],
        task_model=row["task_model"],
    )
