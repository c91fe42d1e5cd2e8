"""Watching refusals: every hold a refused request made is given back exactly once, and the
refusal leaves exactly one usage row (``core.holds``'s rule, checked on each path to it)."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from imagegate.core.billing import Reservation
from imagegate.storage.tables import reservations, usage
from tests.conftest import Gateway


class ReleaseSpy:
    """Counts the holds given back through ``Billing.release`` (the one way a refusal does)."""

    def __init__(self, gateway: Gateway, monkeypatch: pytest.MonkeyPatch) -> None:
        self.released: list[str] = []
        billing = gateway.services.billing
        original = billing.release

        async def release(reservation: Reservation | str) -> bool:
            self.released.append(reservation if isinstance(reservation, str) else reservation.id)
            return await original(reservation)

        monkeypatch.setattr(billing, "release", release)


async def holds_of(gateway: Gateway, key_id: str) -> dict[str, str]:
    """The key's reservations: id → state (``held``, ``released``, ``settled``)."""
    query = sa.select(reservations.c.id, reservations.c.state).where(
        reservations.c.key_id == key_id
    )
    async with gateway.services.engine.connect() as conn:
        return {row.id: row.state for row in await conn.execute(query)}


async def error_rows(gateway: Gateway, key_id: str) -> list[tuple[int, str | None]]:
    """The key's usage rows of refused requests: (status, model)."""
    await gateway.services.usage.flush()
    query = sa.select(usage.c.status, usage.c.model).where(
        usage.c.key_id == key_id, usage.c.status >= 400
    )
    async with gateway.services.engine.connect() as conn:
        return [(row.status, row.model) for row in await conn.execute(query)]


async def assert_given_back_once(
    gateway: Gateway, spy: ReleaseSpy, key_id: str, *, still_held: int = 0
) -> None:
    """Every hold of ``key_id`` not taken over by a task (``still_held`` are) was given back,
    each exactly once."""
    holds = await holds_of(gateway, key_id)
    released = sorted(rid for rid, state in holds.items() if state == "released")
    assert released, "no hold was given back"
    assert sorted(spy.released) == released, (spy.released, holds)
    assert sum(state == "held" for state in holds.values()) == still_held, holds
