"""Reading the usage log: filtered rows and totals by day, model and key."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from typing import Any, Literal, Protocol

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
    """Which usage rows: created in ``[start, end)``, of this model, key and route (``None``:
    any)."""

    start: float | None = None
    end: float | None = None
    model: str | None = None
    key_id: str | None = None
    route: str | None = None


UsageGroup = Literal["day", "model", "key_id"]
"""What usage totals can be grouped by (``day``: ``YYYY-MM-DD`` in UTC)."""


class UsageRepository(Protocol):
    """Reads the usage log (``storage/`` holds the SQL one). Rows are plain dicts with ``str``
    keys and money as ``float``."""

    async def rows(self, where: UsageFilter, limit: int) -> list[dict[str, Any]]:
        """The matching rows' :data:`REPORT_COLUMNS`, newest first."""
        ...

    async def totals(self, where: UsageFilter, by: UsageGroup | None) -> list[dict[str, Any]]:
        """Requests, images, input and output tokens, cost and errors of the matching rows:
        one dict overall (``by`` is ``None``), else one per value of ``by`` (named ``by``),
        in its order."""
        ...


class UsageReport:
    """Filtered rows and totals of the usage log."""

    def __init__(self, repository: UsageRepository) -> None:
        self._usage = repository

    async def rows(self, where: UsageFilter, limit: int = 1000) -> list[dict[str, Any]]:
        return await self._usage.rows(where, limit)

    async def totals(self, where: UsageFilter) -> dict[str, Any]:
        """Overall totals plus totals by day, model and key."""
        return {
            "totals": (await self._usage.totals(where, None))[0],
            "by_day": await self._usage.totals(where, "day"),
            "by_model": await self._usage.totals(where, "model"),
            "by_key": await self._usage.totals(where, "key_id"),
        }


def to_csv(rows: list[dict[str, Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(REPORT_COLUMNS), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()
