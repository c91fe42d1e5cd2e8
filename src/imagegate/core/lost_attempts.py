"""Voiding an attempt whose answer was lost: its server stopped after doing the work and before
the client got the answer (recorded under its Idempotency-Key), so the client's retry runs the
request again. What the lost attempt started must not count twice: the tasks it submitted are
cancelled (their holds released), and what it was charged is given back."""

from __future__ import annotations

import logging
from decimal import Decimal

from imagegate.core.billing import Billing
from imagegate.core.tasks import TaskEngine

log = logging.getLogger("imagegate.idempotency")


async def void_attempt(
    billing: Billing, task_engine: TaskEngine, key_id: str, request_id: str
) -> Decimal:
    """Cancel the tasks ``request_id`` submitted for ``key_id`` and give back what it (and
    they) were charged; returns the amount given back."""
    task_ids = await task_engine.submitted_by(key_id, request_id)
    for task_id in task_ids:
        await task_engine.cancel(task_id, key_id)  # a finished one stays as it is
    refunded = await billing.void_requests(key_id, [request_id], usage_of=task_ids)
    if refunded or task_ids:
        log.warning(
            "voided request %s (answer lost): %d tasks cancelled, %s given back",
            request_id,
            len(task_ids),
            refunded,
        )
    return refunded
