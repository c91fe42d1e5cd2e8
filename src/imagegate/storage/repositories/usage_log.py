"""The usage log in SQL: :class:`~imagegate.core.usage.UsageLogRepository`."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncEngine

from imagegate.core.usage import UsageRow, columns
from imagegate.storage.tables import usage


class SqlUsageLogRepository:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def add(self, rows: Sequence[UsageRow]) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(usage.insert(), [columns(row) for row in rows])
