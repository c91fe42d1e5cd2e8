"""Claiming rows for a worker: one statement that picks and marks rows atomically."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa


def claim_update(
    table: sa.Table,
    candidates: sa.Select[Any],
    values: dict[str, Any],
    *,
    postgres: bool,
    still_claimable: sa.ColumnElement[bool],
) -> sa.Update:
    """``UPDATE table SET values`` for the rows ``candidates`` selects (ids), returning them.

    On PostgreSQL the candidates are locked with ``FOR UPDATE SKIP LOCKED`` inside a CTE (an
    ``IN (subquery … LIMIT)`` may be re-evaluated there and claim more rows than asked); SQLite
    serialises writers, so a plain ``IN`` is atomic.
    """
    if postgres:
        picked = candidates.with_for_update(skip_locked=True).cte("picked")
        condition: sa.ColumnElement[bool] = table.c.id == picked.c.id
    else:
        condition = sa.and_(table.c.id.in_(candidates.scalar_subquery()), still_claimable)
    return table.update().where(condition).values(**values).returning(*table.columns)
