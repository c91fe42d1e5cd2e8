"""Reservations and the ledger on SQLite and PostgreSQL: never below zero, exactly once."""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from imagegate.cli._common import key_service
from imagegate.core.billing import Reservation
from imagegate.errors import QuotaExceeded
from imagegate.storage.group_commit import GroupCommit
from imagegate.storage.repositories.billing import sql_billing
from imagegate.storage.tables import ledger, reservations

D = Decimal


async def new_key(engine: AsyncEngine, **limits: object) -> str:
    async with key_service(engine) as keys:
        key, _ = await keys.create(name="t", limits=dict(limits))
    return key.id


async def ledger_sum(engine: AsyncEngine, key_id: str) -> Decimal:
    query = sa.select(sa.func.coalesce(sa.func.sum(ledger.c.amount_usd), 0)).where(
        ledger.c.key_id == key_id
    )
    async with engine.connect() as conn:
        return Decimal((await conn.execute(query)).scalar_one())


async def test_concurrent_reservations_never_overdraw(engine: AsyncEngine) -> None:
    billing = sql_billing(engine)
    key_id = await new_key(engine, balance_usd=D("1.00"))

    async def attempt(index: int) -> bool:
        try:
            await billing.reserve(key_id, D("0.10"), f"req_{index}")
        except QuotaExceeded:
            return False
        return True

    results = await asyncio.gather(*(attempt(i) for i in range(100)))
    assert sum(results) == 10
    limits = await billing.limits(key_id)
    assert limits.balance_usd == D("0")
    assert await ledger_sum(engine, key_id) == D("0")  # top-up +1.00, ten holds of -0.10


async def test_settle_charges_actual_and_refunds_the_rest_once(engine: AsyncEngine) -> None:
    billing = sql_billing(engine)
    key_id = await new_key(engine, balance_usd=D("1.00"))
    reservation = await billing.reserve(key_id, D("0.30"), "req_1")
    assert (await billing.limits(key_id)).balance_usd == D("0.70")
    assert await billing.settle(reservation, D("0.12")) == D("0.12")
    assert await billing.settle(reservation, D("0.12")) is None
    assert await billing.release(reservation) is False
    limits = await billing.limits(key_id)
    assert limits.balance_usd == D("0.88") and limits.day_spent_usd == D("0.12")
    assert await ledger_sum(engine, key_id) == D("0.88")


async def test_release_refunds_exactly_once(engine: AsyncEngine) -> None:
    billing = sql_billing(engine)
    key_id = await new_key(engine, balance_usd=D("0.50"))
    reservation = await billing.reserve(key_id, D("0.50"), "req_1")
    results = await asyncio.gather(*(billing.release(reservation) for _ in range(5)))
    assert sorted(results) == [False, False, False, False, True]
    assert (await billing.limits(key_id)).balance_usd == D("0.50")


async def test_a_charge_above_the_hold_never_goes_negative(engine: AsyncEngine) -> None:
    billing = sql_billing(engine)
    key_id = await new_key(engine, balance_usd=D("0.20"))
    reservation = await billing.reserve(key_id, D("0.15"), "req_1")
    assert await billing.settle(reservation, D("0.90")) == D("0.20")
    assert (await billing.limits(key_id)).balance_usd == D("0")


async def test_budgets(engine: AsyncEngine) -> None:
    billing = sql_billing(engine)
    key_id = await new_key(engine, budget_daily_usd=D("0.25"))
    first = await billing.reserve(key_id, D("0.20"), "req_1")
    with pytest.raises(QuotaExceeded, match="daily budget"):
        await billing.reserve(key_id, D("0.10"), "req_2")
    await billing.release(first)
    await billing.reserve(key_id, D("0.10"), "req_3")
    monthly = await new_key(engine, budget_monthly_usd=D("0.05"))
    with pytest.raises(QuotaExceeded):
        await billing.reserve(monthly, D("0.06"), "req_4")


async def test_unlimited_keys_are_still_tracked(engine: AsyncEngine) -> None:
    billing = sql_billing(engine)
    key_id = await new_key(engine)
    reservation = await billing.reserve(key_id, D("5"), "req_1")
    await billing.settle(reservation, D("2.5"))
    limits = await billing.limits(key_id)
    assert limits.balance_usd is None and limits.day_spent_usd == D("2.5")


async def test_top_up_and_expiry(engine: AsyncEngine) -> None:
    billing = sql_billing(engine)
    key_id = await new_key(engine, balance_usd=D("0"))
    with pytest.raises(QuotaExceeded):
        await billing.reserve(key_id, D("0.01"), "req_1")
    assert (await billing.top_up(key_id, D("2"))).balance_usd == D("2")
    await billing.reserve(key_id, D("0.01"), "req_2")
    expired = await new_key(engine, expires_at=time.time() - 1)
    with pytest.raises(QuotaExceeded):
        await billing.reserve(expired, D("0.01"), "req_3")


async def test_stale_holds_are_released(engine: AsyncEngine) -> None:
    billing = sql_billing(engine)
    key_id = await new_key(engine, balance_usd=D("1"))
    await billing.reserve(key_id, D("0.4"), "req_1")
    assert await billing.release_expired(time.time()) == 0
    assert await billing.renew_holds(time.time() + 60) == 1
    assert await billing.release_expired(time.time() + 61) == 0
    assert await billing.release_expired(time.time() + 120) == 1
    assert (await billing.limits(key_id)).balance_usd == D("1")


async def test_group_committed_reservations_never_overdraw(engine: AsyncEngine) -> None:
    writer = GroupCommit(engine)
    billing = sql_billing(engine, writer)
    key_id = await new_key(engine, balance_usd=D("1.00"))

    async def attempt(index: int) -> Reservation | None:
        try:
            return await billing.reserve(key_id, D("0.10"), f"req_{index}")
        except QuotaExceeded:
            return None

    held = [r for r in await asyncio.gather(*(attempt(i) for i in range(100))) if r]
    assert len(held) == 10
    charged = await asyncio.gather(*(billing.settle(r, D("0.04")) for r in held))
    await writer.close()
    assert charged == [D("0.04")] * 10
    limits = await billing.limits(key_id)
    assert limits.balance_usd == D("0.60") and limits.day_spent_usd == D("0.40")
    assert await ledger_sum(engine, key_id) == D("0.60")


async def test_unheld_reservations_write_only_their_charge_once(engine: AsyncEngine) -> None:
    writer = GroupCommit(engine)
    billing = sql_billing(engine, writer)
    key_id = await new_key(engine)
    first = billing.reserve_unheld(key_id, D("0.50"), "req_1")
    second = billing.reserve_unheld(key_id, D("0.50"), "req_2")
    assert not first.held
    assert await billing.settle(first, D("0.20")) == D("0.20")
    assert await billing.settle(first, D("0.20")) is None
    assert await billing.release(first) is False
    assert await billing.release(second) is True
    assert await billing.settle(second, D("0.20")) is None
    await writer.close()
    async with engine.connect() as conn:
        held = (await conn.execute(sa.select(sa.func.count()).select_from(reservations))).scalar()
        kinds = [r.kind for r in await conn.execute(sa.select(ledger.c.kind))]
    assert held == 0 and kinds == ["charge"]
    assert await ledger_sum(engine, key_id) == D("-0.20")
    limits = await billing.limits(key_id)
    assert limits.day_spent_usd == D("0.20") and limits.month_spent_usd == D("0.20")


async def test_spending_of_several_keys_in_one_batch(engine: AsyncEngine) -> None:
    writer = GroupCommit(engine)
    billing = sql_billing(engine, writer)
    keys = [await new_key(engine) for _ in range(3)]
    unheld = [billing.reserve_unheld(k, D("1"), f"req_{i}") for i, k in enumerate(keys * 2)]
    await asyncio.gather(*(billing.settle(r, D("0.25")) for r in unheld))
    await writer.close()
    for key_id in keys:
        assert (await billing.limits(key_id)).day_spent_usd == D("0.50")


async def test_an_unheld_charge_still_reduces_a_balance_set_meanwhile(engine: AsyncEngine) -> None:
    billing = sql_billing(engine)
    key_id = await new_key(engine)
    reservation = billing.reserve_unheld(key_id, D("1"), "req_1")
    await billing.top_up(key_id, D("2"))  # e.g. on another replica, after this one checked
    await billing.settle(reservation, D("0.5"))
    assert (await billing.limits(key_id)).balance_usd == D("1.5")
    assert await ledger_sum(engine, key_id) == D("1.5")
