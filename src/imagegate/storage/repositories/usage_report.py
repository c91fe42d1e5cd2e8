"""Reading the ``usage`` table (the SQL behind
:class:`~imagegate.core.usage_report.UsageRepository`)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from imagegate.core.usage_report import REPORT_COLUMNS, UsageFilter, UsageGroup
from imagegate.storage.tables import usage


class SqlUsageRepository:
    """Filtered rows and grouped sums of the usage log (SQLite and PostgreSQL)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def rows(self, where: UsageFilter, limit: int) -> list[dict[str, Any]]:
        query = (
            sa.select(*(usage.c[name] for name in REPORT_COLUMNS))
            .where(*_conditions(where))
            .order_by(usage.c.created_at.desc(), usage.c.id.desc())
            .limit(limit)
        )
        async with self._engine.connect() as conn:
            return [_plain(dict(row)) for row in (await conn.execute(query)).mappings().all()]

    async def totals(self, where: UsageFilter, by: UsageGroup | None) -> list[dict[str, Any]]:
        c = usage.c
        column: sa.ColumnElement[Any] | None = (
            None if by is None else self._day().label("day") if by == "day" else c[by]
        )
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
            *_conditions(where)
        )
        if column is not None:
            query = query.group_by(column).order_by(column)
        async with self._engine.connect() as conn:
            result = (await conn.execute(query)).mappings().all()
        return [_plain(dict(row)) for row in result]

    def _day(self) -> sa.ColumnElement[str]:
        if self._engine.dialect.name == "postgresql":
            return sa.func.to_char(sa.func.to_timestamp(usage.c.created_at), "YYYY-MM-DD")
        return sa.func.date(usage.c.created_at, "unixepoch")


def _conditions(where: UsageFilter) -> list[sa.ColumnElement[bool]]:
    c = usage.c
    conditions: list[sa.ColumnElement[bool]] = []
    if where.start is not None:
        conditions.append(c.created_at >= where.start)
    if where.end is not None:
        conditions.append(c.created_at < where.end)
    for column, value in (
        (c.model, where.model),
        (c.key_id, where.key_id),
        (c.route, where.route),
    ):
        if value is not None:
            conditions.append(column == value)
    return conditions


def _plain(row: dict[str, Any]) -> dict[str, Any]:
    """Plain ``str`` keys (SQLAlchemy's are a ``str`` subclass JSON encoders refuse) and money
    as float."""
    return {
        str(name): float(value) if isinstance(value, Decimal) else value
        for name, value in row.items()
    }
