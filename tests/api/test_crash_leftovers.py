"""What a replica killed mid-request leaves behind is cleaned up by the survivors: its credit
holds are released within a lease (not an hour), and a request's usage row commits with its
charge."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import OperationalError

from imagegate.storage.repositories.billing import sql_billing
from imagegate.storage.tables import ledger, reservations, usage
from tests.api.billing_kit import priced_gateway
from tests.api.test_billing_api import BODY, ROUTE, make_key, show
from tests.conftest import Gateway

LEASE = 1.5


@pytest.fixture
async def leased(tmp_path: Path) -> AsyncIterator[Gateway]:
    """A priced gateway whose leases (tasks, holds, idempotency) last 1.5 s."""
    async for gateway in priced_gateway(tmp_path, task_lease_seconds=LEASE):
        yield gateway


async def test_a_dead_replicas_hold_is_released_within_its_lease(leased: Gateway) -> None:
    key_id, _ = await make_key(leased, credit_usd=1.0)
    dead = sql_billing(leased.services.engine, owner="dead-replica", lease_seconds=LEASE)
    await dead.reserve(key_id, Decimal("0.5"), "req-of-a-dead-replica")
    leased.services.access.forget(key_id)
    assert (await show(leased, key_id))["balance_usd"] == pytest.approx(0.5)
    deadline = time.monotonic() + 4 * LEASE
    while (await show(leased, key_id))["balance_usd"] != pytest.approx(1.0):
        assert time.monotonic() < deadline, "the orphaned hold was not released"
        await asyncio.sleep(0.1)
    async with leased.services.engine.connect() as conn:
        states = (await conn.execute(sa.select(reservations.c.state))).scalars().all()
    assert states == ["released"]


async def test_a_live_replicas_long_request_keeps_its_hold(leased: Gateway) -> None:
    key_id, _ = await make_key(leased, credit_usd=1.0)
    reservation = await leased.services.billing.reserve(key_id, Decimal("0.5"), "req-slow")
    await asyncio.sleep(3 * LEASE)
    assert await leased.services.billing.settle(reservation, Decimal("0.5")) == Decimal("0.5")


async def test_the_usage_row_commits_with_the_charge(
    leased: Gateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    key_id, headers = await make_key(leased, credit_usd=1.0)
    # A crash right after the charge: rows only queued in memory would be lost with it.
    monkeypatch.setattr(leased.services.usage, "record", lambda row: None)
    response = await leased.client.post(ROUTE, json=BODY, headers=headers)
    assert response.status_code == 200, response.text
    async with leased.services.engine.connect() as conn:
        charged = (
            await conn.execute(
                sa.select(sa.func.sum(ledger.c.amount_usd)).where(ledger.c.kind == "charge")
            )
        ).scalar_one()
        metered = (
            await conn.execute(
                sa.select(sa.func.sum(usage.c.cost_usd)).where(usage.c.key_id == key_id)
            )
        ).scalar_one()
    assert -charged == metered == Decimal("0.1")


async def test_a_hold_whose_release_failed_expires_though_its_owner_lives(
    leased: Gateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    key_id, _ = await make_key(leased, credit_usd=1.0)
    billing = leased.services.billing
    reservation = await billing.reserve(key_id, Decimal("0.5"), "req-outage")
    writer = leased.services.writer

    async def down(*_: object) -> object:
        raise OperationalError("UPDATE reservations", {}, Exception("connection refused"))

    with monkeypatch.context() as patch:
        patch.setattr(writer, "run", down)
        with pytest.raises(OperationalError):
            await billing.release(reservation)
    deadline = time.monotonic() + 4 * LEASE
    while True:
        leased.services.access.forget(key_id)
        if (await show(leased, key_id))["balance_usd"] == pytest.approx(1.0):
            break
        assert time.monotonic() < deadline, "the hold stayed held"
        await asyncio.sleep(0.1)
