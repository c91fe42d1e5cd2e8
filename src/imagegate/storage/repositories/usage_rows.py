"""SQL of :class:`~imagegate.core.usage_rows.UsageRowRepository`: usage rows in a batch."""

from __future__ import annotations

import time
from dataclasses import fields

from imagegate.core.unit_of_work import UnitOfWork
from imagegate.core.usage import UsageRow
from imagegate.storage.group_commit import batch_of
from imagegate.storage.tables import usage

_FIELDS = tuple(field.name for field in fields(UsageRow))


class SqlUsageRowRepository:
    """Adds usage rows to a group-commit batch (one ``executemany`` per batch)."""

    def add(self, uow: UnitOfWork, *rows: UsageRow) -> None:
        now = time.time()
        batch_of(uow).insert(usage, *(_values(row, now) for row in rows))


def _values(row: UsageRow, now: float) -> dict[str, object]:
    # Not dataclasses.asdict: it deep-copies every value, a measurable cost per request.
    values = {name: getattr(row, name) for name in _FIELDS}
    if not values["created_at"]:
        values["created_at"] = now
    return values
