"""Reading the usage log: filtered rows and totals by day, model and key."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from imagegate.storage.tables import usage

REPORT_COLUMNS = (
    "created_at",
    "request_id",
    "key_id",
    "model",
    "route",
    "status",
    "n",
    "images",
    "size",
    "quality",
    "input_tokens",
    "output_tokens",
    "cost_usd",
    "latency_ms",
    "error_code",
    "user",
)


@dataclass(frozen=True, slots=True)
class UsageFilter:
    start: float | None = None
    end: float | None = None
    model: str | None = None
    key_id: str | None = None
    route: str | None = None

    def where(self) -> list[sa.ColumnElement[bool]]:
        c = usage.c
        conditions: list[sa.ColumnElement[bool]] = []
        if self.start is not None:
            conditions.append(c.created_at >= self.start)
        if self.end is not None:
            conditions.append(c.created_at < self.end)
        for column, value in (
            (c.model, self.model),
            (c.key_id, self.key_id),
            (c.route, self.route),
        ):
            if value is not None:
                conditions.append(column == value)
        return conditions


class UsageReport:
    """Queries over the usage table (works on SQLite and PostgreSQL)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    def _day(self) -> sa.ColumnElement[str]:
        if self._engine.dialect.name == "postgresql":
            return sa.func.to_char(sa.func.to_timestamp(usage.c.created_at), "YYYY-MM-DD")
        return sa.func.date(usage.c.created_at, "unixepoch")

    async def rows(self, where: UsageFilter, limit: int = 1000) -> list[dict[str, Any]]:
        query = (
            sa.select(*(usage.c[name] for name in REPORT_COLUMNS))
            .where(*where.where())
            .order_by(usage.c.created_at.desc(), usage.c.id.desc())
            .limit(limit)
        )
        async with self._engine.connect() as conn:
            return [_plain(dict(row)) for row in (await conn.execute(query)).mappings().all()]

    async def totals(self, where: UsageFilter) -> dict[str, Any]:
        """Overall totals plus totals by day, model and key."""
        return {
            "totals": (await self._group(where, None))[0],
            "by_day": await self._group(where, self._day().label("day")),
            "by_model": await self._group(where, usage.c.model),
            "by_key": await self._group(where, usage.c.key_id),
        }

    async def _group(
        self, where: UsageFilter, column: sa.ColumnElement[Any] | None
    ) -> list[dict[str, Any]]:
        c = usage.c
        measures = [
            sa.func.count().label("requests"),
            sa.func.coalesce(sa.func.sum(c.images), 0).label("images"),
            sa.func.coalesce(sa.func.sum(c.input_tokens), 0).label("input_tokens"),
            sa.func.coalesce(sa.func.sum(c.output_tokens), 0).label("output_tokens"),
            sa.func.coalesce(sa.func.sum(c.cost_usd), 0).label("cost_usd"),
            sa.func.coalesce(sa.func.sum(sa.case((c.status >= 400, 1), else_=0)), 0).label(
                "errors"
            ),
        ]
        query = sa.select(*([column] if column is not None else []), *measures).where(
            *where.where()
        )
        if column is not None:
            query = query.group_by(column).order_by(column)
        async with self._engine.connect() as conn:
            result = (await conn.execute(query)).mappings().all()
        return [_plain(dict(row)) for row in result]


def _plain(row: dict[str, Any]) -> dict[str, Any]:
    """Plain ``str`` keys (SQLAlchemy's are a ``str`` subclass JSON encoders refuse) and money
    as float."""
    return {
        str(name): float(value) if isinstance(value, Decimal) else value
        for name, value in row.items()
    }


def to_csv(rows: list[dict[str, Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(REPORT_COLUMNS), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()
