"""What the web console reads that no API route lists: a key's images with what made them
(the gallery), tasks across every front with their webhook deliveries, and deployment health.

Read-only queries; each takes the key whose data it may show (``None`` only for an admin's
view of every key)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from imagegate.core.task_model import TaskRecord
from imagegate.storage.tables import assets, tasks, usage, webhook_deliveries
from imagegate.storage.task_store import to_record


@dataclass(frozen=True, slots=True)
class GalleryItem:
    asset_id: str
    content_type: str
    width: int | None
    height: int | None
    created_at: float
    prompt: str
    model: str | None
    cost_usd: Decimal | None
    """This image's share of its request's charge."""
    route: str | None
    task_id: str | None
    parent_task_id: str | None
    action: str | None


@dataclass(frozen=True, slots=True)
class Delivery:
    attempt: int
    state: str
    status_code: int | None
    error: str | None
    url: str
    created_at: float


def _task_prompt(meta: Any, request: Any) -> str:
    for source in (meta, request, (request or {}).get("params") if request else None):
        if isinstance(source, dict) and isinstance(source.get("prompt"), str):
            return str(source["prompt"])
    return ""


@dataclass(slots=True)
class Totals:
    requests: int = 0
    images: int = 0
    cost_usd: Decimal = Decimal(0)
    errors: int = 0

    def add(self, requests: int, images: int, cost: Decimal, errors: int) -> None:
        self.requests += requests
        self.images += images
        self.cost_usd += cost
        self.errors += errors


@dataclass(frozen=True, slots=True)
class UsageSummary:
    """Totals overall and by day, model and key, from one grouped scan of the usage log."""

    totals: Totals
    by_day: dict[str, Totals]
    by_model: dict[str | None, Totals]
    by_key: dict[str | None, Totals]


class ConsoleViews:
    """The console's read models over the gateway's tables."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def gallery(
        self, owner_key_id: str, *, limit: int = 48, offset: int = 0
    ) -> tuple[list[GalleryItem], int]:
        """One page of the key's images, newest first, and how many it has in all."""
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
        return [_gallery_item(row) for row in rows], total

    async def tasks(
        self, owner_key_id: str | None, *, limit: int = 50, offset: int = 0
    ) -> list[TaskRecord]:
        """Tasks of every kind (every front), newest first; ``None``: every key's."""
        query = tasks.select().order_by(tasks.c.created_at.desc()).limit(limit).offset(offset)
        if owner_key_id is not None:
            query = query.where(tasks.c.owner_key_id == owner_key_id)
        async with self._engine.connect() as conn:
            rows = (await conn.execute(query)).mappings().all()
        return [to_record(row) for row in rows]

    async def usage_summary(self, start: float, key_id: str | None) -> UsageSummary:
        """Usage since ``start`` (of one key, or every key's for ``None``) in one query grouped
        by day, model and key, summed here: the usage page's four views cost one scan."""
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
        summary = UsageSummary(Totals(), {}, {}, {})
        for row_day, model, key, requests, images, cost, errors in rows:
            values = (int(requests), int(images), Decimal(cost), int(errors or 0))
            summary.totals.add(*values)
            summary.by_day.setdefault(str(row_day), Totals()).add(*values)
            summary.by_model.setdefault(model, Totals()).add(*values)
            summary.by_key.setdefault(key, Totals()).add(*values)
        return summary

    async def cost_of(self, request_id: str) -> Decimal | None:
        """What a request (or task: its id) was charged, once its usage row is written."""
        query = sa.select(sa.func.sum(usage.c.cost_usd)).where(usage.c.request_id == request_id)
        async with self._engine.connect() as conn:
            value = (await conn.execute(query)).scalar_one_or_none()
        return Decimal(value) if value is not None else None

    async def deliveries(self, task_id: str) -> list[Delivery]:
        """Every webhook try for a task, oldest first (the secret never leaves here)."""
        d = webhook_deliveries.c
        query = (
            sa.select(d.attempt, d.state, d.status_code, d.error, d.url, d.created_at)
            .where(d.task_id == task_id)
            .order_by(d.created_at, d.id)
        )
        async with self._engine.connect() as conn:
            rows = (await conn.execute(query)).mappings().all()
        return [Delivery(**dict(row)) for row in rows]


def _gallery_item(row: sa.RowMapping) -> GalleryItem:
    cost = row["cost_usd"]
    share = Decimal(cost) / max(1, int(row["images"] or 1)) if cost is not None else None
    meta = row["meta"] if isinstance(row["meta"], dict) else {}
    return GalleryItem(
        asset_id=row["id"],
        content_type=row["content_type"],
        width=row["width"],
        height=row["height"],
        created_at=row["created_at"],
        prompt=row["prompt"] or _task_prompt(meta, row["request"]),
        model=row["model"] or row["task_model"],
        cost_usd=share,
        route=row["route"],
        task_id=row["task_id"],
        parent_task_id=row["parent_id"] or meta.get("parent_id"),
        action=meta.get("action"),
    )
