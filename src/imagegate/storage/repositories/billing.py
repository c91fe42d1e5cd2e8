"""SQL of :mod:`imagegate.core.billing`: key limits and reservations (holds), and the ledger."""

from __future__ import annotations

import time
from collections.abc import Collection, Sequence
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from imagegate.core.billing import (
    HOLD_LEASE_SECONDS,
    Billing,
    ClosedHold,
    KeyLimits,
    LedgerEntry,
    NewHold,
    day_of,
    month_of,
)
from imagegate.core.task_model import UNFINISHED
from imagegate.core.unit_of_work import UnitOfWork
from imagegate.storage.group_commit import GroupCommit, batch_of
from imagegate.storage.tables import key_limits, ledger, reservations, tasks, usage

ZERO = Decimal(0)
SPENDING = "spending"
"""The group commit's tally of charges taken without a hold, per key."""


def sql_billing(
    engine: AsyncEngine,
    writer: GroupCommit | None = None,
    *,
    owner: str = "local",
    lease_seconds: float = HOLD_LEASE_SECONDS,
) -> Billing:
    """A :class:`Billing` on ``engine`` committing through ``writer`` (a new one by default)."""
    writer = writer or GroupCommit(engine)
    return Billing(
        SqlHoldRepository(engine),
        SqlLedgerRepository(engine, writer),
        writer,
        owner=owner,
        lease_seconds=lease_seconds,
    )


class SqlHoldRepository:
    """Key limits and reservations (:class:`~imagegate.core.billing.HoldRepository`)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def create_limits(
        self, uow: UnitOfWork, key_id: str, values: dict[str, Any], now: float
    ) -> None:
        conn = batch_of(uow).conn
        await conn.execute(key_limits.insert().values(key_id=key_id, updated_at=now, **values))

    async def read(self, key_id: str, now: float) -> KeyLimits | None:
        async with self._engine.connect() as conn:
            return await _read(conn, key_id, now)

    async def read_in(self, uow: UnitOfWork, key_id: str, now: float) -> KeyLimits | None:
        return await _read(batch_of(uow).conn, key_id, now)

    async def update_limits(
        self, uow: UnitOfWork, key_id: str, changes: dict[str, Any], now: float
    ) -> None:
        conn = batch_of(uow).conn
        exists = await conn.execute(
            sa.select(key_limits.c.key_id).where(key_limits.c.key_id == key_id)
        )
        if exists.first() is None:
            await conn.execute(key_limits.insert().values(key_id=key_id, updated_at=now))
        await conn.execute(
            key_limits.update()
            .where(key_limits.c.key_id == key_id)
            .values(updated_at=now, **changes)
        )

    async def top_up(self, uow: UnitOfWork, key_id: str, amount: Decimal, now: float) -> bool:
        result = await batch_of(uow).conn.execute(
            key_limits.update()
            .where(key_limits.c.key_id == key_id)
            .values(
                balance_usd=sa.func.coalesce(key_limits.c.balance_usd, 0) + amount,
                updated_at=now,
            )
        )
        return bool(result.rowcount)

    async def take(self, uow: UnitOfWork, key_id: str, amount: Decimal, now: float) -> bool:
        result = await batch_of(uow).conn.execute(_hold(key_id, amount, now))
        return bool(result.rowcount)

    def add(self, uow: UnitOfWork, hold: NewHold) -> None:
        reservation = hold.reservation
        batch_of(uow).insert(
            reservations,
            {
                "id": reservation.id,
                "key_id": reservation.key_id,
                "request_id": reservation.request_id,
                "amount_usd": reservation.amount,
                "state": "held",
                "created_at": hold.created_at,
                "lease_owner": hold.lease_owner,
                "lease_expires_at": hold.lease_expires_at,
            },
        )

    async def credit(self, uow: UnitOfWork, key_id: str, amount: Decimal, now: float) -> None:
        await batch_of(uow).conn.execute(_credit(key_id, amount, now))

    async def close(
        self, uow: UnitOfWork, reservation_id: str, state: str, now: float
    ) -> ClosedHold | None:
        conn = batch_of(uow).conn
        result = await conn.execute(
            reservations.update()
            .where(reservations.c.id == reservation_id, reservations.c.state == "held")
            .values(state=state, closed_at=now)
        )
        if not result.rowcount:
            return None
        query = reservations.select().where(reservations.c.id == reservation_id)
        row = (await conn.execute(query)).mappings().one()
        return ClosedHold(row["key_id"], row["request_id"], row["amount_usd"])

    async def renew(
        self, uow: UnitOfWork, reservation_ids: Collection[str], owner: str, until: float
    ) -> set[str]:
        c = reservations.c
        result = await batch_of(uow).conn.execute(
            reservations.update()
            .where(c.id.in_(list(reservation_ids)), c.lease_owner == owner, c.state == "held")
            .values(lease_expires_at=until)
            .returning(c.id)
        )
        return set(result.scalars())

    async def expired(self, now: float, legacy_before: float) -> list[str]:
        c = reservations.c
        unfinished = sa.exists().where(
            tasks.c.reservation_id == c.id,
            tasks.c.status.in_(UNFINISHED),
        )
        expired = sa.or_(
            c.lease_expires_at < now,
            sa.and_(c.lease_expires_at.is_(None), c.created_at < legacy_before),
        )
        query = sa.select(c.id).where(c.state == "held", expired, ~unfinished)
        async with self._engine.connect() as conn:
            return list((await conn.execute(query)).scalars())


class SqlLedgerRepository:
    """The ledger and unheld spending (:class:`~imagegate.core.billing.LedgerRepository`);
    registers the spending tally's writer with ``writer``."""

    def __init__(self, engine: AsyncEngine, writer: GroupCommit) -> None:
        self._engine = engine
        writer.register_tally(SPENDING, _add_spending)

    def append(self, uow: UnitOfWork, *entries: LedgerEntry) -> None:
        batch_of(uow).insert(ledger, *(_row(entry) for entry in entries))

    async def write(self, uow: UnitOfWork, *entries: LedgerEntry) -> None:
        if entries:
            await batch_of(uow).conn.execute(ledger.insert(), [_row(entry) for entry in entries])

    def spend(self, uow: UnitOfWork, key_id: str, amount: Decimal) -> None:
        batch_of(uow).tally(SPENDING, key_id, amount)

    async def top_ups(self, key_id: str, limit: int) -> list[LedgerEntry]:
        query = (
            sa.select(ledger.c.amount_usd, ledger.c.note, ledger.c.created_at)
            .where(ledger.c.key_id == key_id, ledger.c.kind == "topup")
            .order_by(ledger.c.created_at.desc(), ledger.c.id.desc())
            .limit(limit)
        )
        async with self._engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [
            LedgerEntry(key_id, "topup", row.amount_usd, row.created_at, note=row.note)
            for row in rows
        ]

    async def voided(self, uow: UnitOfWork, key_id: str, request_ids: Sequence[str]) -> bool:
        found = await batch_of(uow).conn.execute(
            sa.select(ledger.c.id).where(_of(key_id, request_ids), ledger.c.kind == "void").limit(1)
        )
        return found.first() is not None

    async def charges(
        self, uow: UnitOfWork, key_id: str, request_ids: Sequence[str]
    ) -> dict[str, Decimal]:
        charges = await batch_of(uow).conn.execute(
            sa.select(ledger.c.request_id, -sa.func.sum(ledger.c.amount_usd))
            .where(_of(key_id, request_ids), ledger.c.kind == "charge")
            .group_by(ledger.c.request_id)
        )
        return {str(request_id): Decimal(amount) for request_id, amount in charges}

    async def void_usage(self, uow: UnitOfWork, key_id: str, request_ids: Sequence[str]) -> None:
        await batch_of(uow).conn.execute(
            usage.update()
            .where(usage.c.key_id == key_id, usage.c.request_id.in_(list(request_ids)))
            .values(cost_usd=ZERO, error_code="answer_lost")
        )


def _of(key_id: str, request_ids: Sequence[str]) -> sa.ColumnElement[bool]:
    return sa.and_(ledger.c.key_id == key_id, ledger.c.request_id.in_(list(request_ids)))


def _row(entry: LedgerEntry) -> dict[str, Any]:
    return {
        "key_id": entry.key_id,
        "kind": entry.kind,
        "amount_usd": entry.amount,
        "reservation_id": entry.reservation_id,
        "request_id": entry.request_id,
        "note": entry.note,
        "created_at": entry.created_at,
    }


async def _read(conn: AsyncConnection, key_id: str, now: float) -> KeyLimits | None:
    query = key_limits.select().where(key_limits.c.key_id == key_id)
    row = (await conn.execute(query)).mappings().first()
    if row is None:
        return None
    routes = row["routes"]
    return KeyLimits(
        key_id=key_id,
        balance_usd=row["balance_usd"],
        budget_daily_usd=row["budget_daily_usd"],
        budget_monthly_usd=row["budget_monthly_usd"],
        routes=tuple(routes) if routes is not None else None,
        rpm=row["rpm"],
        images_per_minute=row["images_per_minute"],
        megapixels_per_day=row["megapixels_per_day"],
        max_concurrent=row["max_concurrent"],
        expires_at=row["expires_at"],
        day_spent_usd=row["day_spent_usd"] if row["day"] == day_of(now) else ZERO,
        month_spent_usd=row["month_spent_usd"] if row["month"] == month_of(now) else ZERO,
    )


def _spent(
    column: sa.Column[Any], period_column: sa.Column[Any], period: str | sa.BindParameter[str]
) -> Any:
    return sa.case((period_column == period, column), else_=0)


def _hold(key_id: str, amount: Decimal, now: float) -> sa.Update:
    day, month = day_of(now), month_of(now)
    c = key_limits.c
    day_spent = _spent(c.day_spent_usd, c.day, day)
    month_spent = _spent(c.month_spent_usd, c.month, month)
    return (
        key_limits.update()
        .where(
            c.key_id == key_id,
            sa.or_(c.balance_usd.is_(None), c.balance_usd >= amount),
            sa.or_(c.budget_daily_usd.is_(None), day_spent + amount <= c.budget_daily_usd),
            sa.or_(c.budget_monthly_usd.is_(None), month_spent + amount <= c.budget_monthly_usd),
            sa.or_(c.expires_at.is_(None), c.expires_at > now),
        )
        .values(
            balance_usd=c.balance_usd - amount,
            day=day,
            day_spent_usd=day_spent + amount,
            month=month,
            month_spent_usd=month_spent + amount,
            updated_at=now,
        )
    )


def _credit(key_id: str, amount: Decimal, now: float) -> sa.Update:
    """Give ``amount`` back (negative: take more) to the balance and this period's spending."""
    c = key_limits.c
    return (
        key_limits.update()
        .where(c.key_id == key_id)
        .values(
            balance_usd=c.balance_usd + amount,
            day_spent_usd=sa.case(
                (c.day == day_of(now), c.day_spent_usd - amount), else_=c.day_spent_usd
            ),
            month_spent_usd=sa.case(
                (c.month == month_of(now), c.month_spent_usd - amount), else_=c.month_spent_usd
            ),
            updated_at=now,
        )
    )


def _add_spending_statement() -> sa.Update:
    c = key_limits.c
    day: sa.BindParameter[str] = sa.bindparam("p_day")
    month: sa.BindParameter[str] = sa.bindparam("p_month")
    amount = sa.bindparam("p_amount", type_=c.day_spent_usd.type)
    return (
        key_limits.update()
        .where(c.key_id == sa.bindparam("p_key"))
        .values(
            # NULL stays NULL; a balance set meanwhile (by another replica) is charged too.
            balance_usd=c.balance_usd - amount,
            day=day,
            day_spent_usd=_spent(c.day_spent_usd, c.day, day) + amount,
            month=month,
            month_spent_usd=_spent(c.month_spent_usd, c.month, month) + amount,
            updated_at=sa.bindparam("p_now"),
        )
    )


_ADD_SPENDING = _add_spending_statement()


async def _add_spending(conn: AsyncConnection, spent: dict[Any, Decimal]) -> None:
    """Count unheld charges into each key's daily and monthly spending (the tally writer):
    one statement for every key of the batch."""
    now = time.time()
    day, month = day_of(now), month_of(now)
    await conn.execute(
        _ADD_SPENDING,
        [
            {"p_key": key_id, "p_amount": amount, "p_day": day, "p_month": month, "p_now": now}
            for key_id, amount in spent.items()
        ],
    )
