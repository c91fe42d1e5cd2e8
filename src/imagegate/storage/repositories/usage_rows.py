"""Usage rows in SQL: :class:`~imagegate.core.usage.UsageRowRepository`."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import fields

from sqlalchemy.ext.asyncio import AsyncEngine

from imagegate.core.unit_of_work import UnitOfWork
from imagegate.core.usage import UsageRow
from imagegate.storage.group_commit import batch_of
from imagegate.storage.tables import usage

_FIELDS = tuple(field.name for field in fields(UsageRow))


class SqlUsageRowRepository:
    """Adds usage rows to a group-commit batch (one ``executemany`` per batch), or writes a
    batch of them in a transaction of their own."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    def add(self, uow: UnitOfWork, *rows: UsageRow) -> None:
        now = time.time()
        batch_of(uow).insert(usage, *(_values(row, now) for row in rows))

    async def write(self, rows: Sequence[UsageRow]) -> None:
        now = time.time()
        async with self._engine.begin() as conn:
            await conn.execute(usage.insert(), [_values(row, now) for row in rows])


def _values(row: UsageRow, now: float) -> dict[str, object]:
    # Not dataclasses.asdict: it deep-copies every value, a measurable cost per request.
    values = {name: getattr(row, name) for name in _FIELDS}
    if not values["created_at"]:
        values["created_at"] = now
    return values
