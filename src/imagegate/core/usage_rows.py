"""The port through which a transaction writes usage rows with what they account for."""

from __future__ import annotations

from typing import Protocol

from imagegate.core.unit_of_work import UnitOfWork
from imagegate.core.usage import UsageRow


class UsageRowRepository(Protocol):
    """Usage rows written inside a caller's unit of work (a task's completion, a synchronous
    request's delivery), so a row says exactly what the ledger says."""

    def add(self, uow: UnitOfWork, *rows: UsageRow) -> None:
        """Write ``rows`` with the unit of work's other rows (at its end); a row without
        ``created_at`` is stamped now."""
        ...
