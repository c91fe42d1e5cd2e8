"""Money: per-key balances and budgets, reservations settled or released exactly once, and an
append-only ledger of every movement.

A request reserves its quote before any upstream call (one conditional UPDATE, so concurrent
requests can never take a balance below zero or a budget past its limit), then settles the
actual cost of what was delivered, or releases the reservation when nothing was. Every state
change of a reservation is guarded by its current state, so it happens once however often it is
attempted; tasks settle inside the transaction that completes them.

A hold names the process that made it (``lease_owner``) and lasts a lease that process renews
while it lives (:meth:`Billing.renew_holds`); a hold whose lease ran out and that no unfinished
task waits on belongs to a request cut off by a crash, and is released
(:meth:`Billing.release_expired`).

Writes go through the group commit (one transaction for many requests), and a synchronous
request by a key that caps no spending takes no hold at all (:meth:`Billing.reserve_unheld`):
nothing can refuse it, so its charge is simply written, with its assets, when it settles.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from imagegate.core.task_model import UNFINISHED
from imagegate.core.unit_of_work import UnitOfWork
from imagegate.errors import NotFound, QuotaExceeded
from imagegate.storage.group_commit import Batch, GroupCommit, batch_of
from imagegate.storage.tables import key_limits, ledger, reservations, tasks, usage

ZERO = Decimal(0)
SPENDING = "spending"
HOLD_LEASE_SECONDS = 30.0
LEGACY_HOLD_SECONDS = 3600.0
"""A hold from before leases (none recorded) is a crash's once it is this old."""
LIMIT_FIELDS = (
    "balance_usd",
    "budget_daily_usd",
    "budget_monthly_usd",
    "routes",
    "rpm",
    "images_per_minute",
    "megapixels_per_day",
    "max_concurrent",
    "expires_at",
)


@dataclass(frozen=True, slots=True)
class KeyLimits:
    """What a key may spend and how fast it may go; ``None`` means unlimited."""

    key_id: str
    balance_usd: Decimal | None = None
    budget_daily_usd: Decimal | None = None
    budget_monthly_usd: Decimal | None = None
    routes: tuple[str, ...] | None = None
    rpm: int | None = None
    images_per_minute: int | None = None
    megapixels_per_day: float | None = None
    max_concurrent: int | None = None
    expires_at: float | None = None
    day_spent_usd: Decimal = ZERO
    month_spent_usd: Decimal = ZERO

    @property
    def caps_spending(self) -> bool:
        """Whether a balance or a budget limits what this key may spend."""
        return not (
            self.balance_usd is None
            and self.budget_daily_usd is None
            and self.budget_monthly_usd is None
        )

    def public(self) -> dict[str, Any]:
        def money(value: Decimal | None) -> float | None:
            return None if value is None else float(value)

        return {
            "balance_usd": money(self.balance_usd),
            "budget_daily_usd": money(self.budget_daily_usd),
            "budget_monthly_usd": money(self.budget_monthly_usd),
            "spent_today_usd": float(self.day_spent_usd),
            "spent_this_month_usd": float(self.month_spent_usd),
            "routes": list(self.routes) if self.routes is not None else None,
            "rpm": self.rpm,
            "images_per_minute": self.images_per_minute,
            "megapixels_per_day": self.megapixels_per_day,
            "max_concurrent": self.max_concurrent,
            "expires_at": int(self.expires_at) if self.expires_at else None,
        }


@dataclass(frozen=True, slots=True)
class Reservation:
    """A quote set aside for one request; ``held`` is False when nothing was held in the
    database (a key with no spending cap, see :meth:`Billing.reserve_unheld`)."""

    id: str
    key_id: str
    amount: Decimal
    request_id: str | None = None
    held: bool = True


def _day(now: float) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(now))


def _month(now: float) -> str:
    return time.strftime("%Y-%m", time.gmtime(now))


class Billing:
    """Balances, budgets, reservations and the ledger, on SQLite and PostgreSQL alike."""

    def __init__(
        self,
        engine: AsyncEngine,
        writer: GroupCommit | None = None,
        *,
        owner: str = "local",
        lease_seconds: float = HOLD_LEASE_SECONDS,
    ) -> None:
        """``owner``: this process's id, named by its holds; ``lease_seconds``: how long a
        hold outlives its owner's last renewal."""
        self._engine = engine
        self.owner = owner
        self.lease_seconds = lease_seconds
        self._writer = writer or GroupCommit(engine)
        self._writer.register_tally(SPENDING, _add_spending)
        self._unheld: set[str] = set()
        """Unheld reservations not yet settled or released (they live only in this process)."""
        self._live: set[str] = set()
        """Holds this process made and still answers for: only their leases are renewed, so a
        hold whose release failed (the database was down) expires and is released later."""

    async def create_limits(
        self, uow: UnitOfWork, key_id: str, values: dict[str, Any], now: float
    ) -> None:
        """Write a new key's limits (and its opening top-up) in the caller's unit of work."""
        conn = batch_of(uow).conn
        await conn.execute(key_limits.insert().values(key_id=key_id, updated_at=now, **values))
        if values.get("balance_usd"):
            amount = Decimal(values["balance_usd"])
            await conn.execute(ledger.insert(), [_entry(key_id, "topup", amount, now=now)])

    async def limits(self, key_id: str) -> KeyLimits:
        async with self._engine.connect() as conn:
            query = key_limits.select().where(key_limits.c.key_id == key_id)
            row = (await conn.execute(query)).mappings().first()
        return _limits(row, key_id, time.time())

    async def update_limits(self, key_id: str, changes: dict[str, Any]) -> KeyLimits:
        """Change limits (not the balance: use :meth:`top_up`)."""
        now = time.time()
        async with self._engine.begin() as conn:
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
        return await self.limits(key_id)

    async def top_up(self, key_id: str, amount: Decimal, note: str | None = None) -> KeyLimits:
        """Add credit; a key with unlimited credit gets a balance of ``amount``."""
        now = time.time()
        async with self._engine.begin() as conn:
            result = await conn.execute(
                key_limits.update()
                .where(key_limits.c.key_id == key_id)
                .values(
                    balance_usd=sa.func.coalesce(key_limits.c.balance_usd, 0) + amount,
                    updated_at=now,
                )
            )
            if not result.rowcount:
                raise NotFound(f"no key with id {key_id!r}", code="key_not_found")
            await conn.execute(
                ledger.insert(), [_entry(key_id, "topup", amount, note=note, now=now)]
            )
        return await self.limits(key_id)

    async def top_ups(self, key_id: str, limit: int = 20) -> list[dict[str, Any]]:
        """The key's latest top-ups, newest first: ``amount_usd``, ``note``, ``created_at``."""
        query = (
            sa.select(ledger.c.amount_usd, ledger.c.note, ledger.c.created_at)
            .where(ledger.c.key_id == key_id, ledger.c.kind == "topup")
            .order_by(ledger.c.created_at.desc(), ledger.c.id.desc())
            .limit(limit)
        )
        async with self._engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [
            {"amount_usd": float(row.amount_usd), "note": row.note, "created_at": row.created_at}
            for row in rows
        ]

    async def reserve(self, key_id: str, amount: Decimal, request_id: str) -> Reservation:
        """Hold ``amount`` or raise 429 ``insufficient_quota``; never below zero, never past a
        budget, whatever runs concurrently (the check and the hold are one UPDATE)."""
        reservation = Reservation("rsv_" + secrets.token_hex(10), key_id, amount, request_id)

        async def hold(batch: Batch) -> None:
            now = time.time()
            held = await batch.conn.execute(_hold(key_id, amount, now))
            if not held.rowcount and await _has_limits(batch.conn, key_id):
                message, retry_after = await self._why(batch.conn, key_id, amount, now)
                raise QuotaExceeded(message, retry_after=retry_after)
            batch.insert(
                reservations,
                {
                    "id": reservation.id,
                    "key_id": key_id,
                    "request_id": request_id,
                    "amount_usd": amount,
                    "state": "held",
                    "created_at": now,
                    "lease_owner": self.owner,
                    "lease_expires_at": now + self.lease_seconds,
                },
            )
            batch.insert(
                ledger, _entry(key_id, "reserve", -amount, reservation.id, request_id, now=now)
            )

        await self._writer.run(hold)
        self._live.add(reservation.id)
        return reservation

    def reserve_unheld(self, key_id: str, amount: Decimal, request_id: str) -> Reservation:
        """A reservation for a key whose limits cap no spending (the caller checked): nothing
        can refuse it, so nothing is written until it settles. Only for requests that end in
        this process; tasks, which may finish after a restart, use :meth:`reserve`."""
        reservation = Reservation(
            "rsv_" + secrets.token_hex(10), key_id, amount, request_id, held=False
        )
        self._unheld.add(reservation.id)
        return reservation

    async def settle(self, reservation: Reservation, actual: Decimal) -> Decimal | None:
        try:
            charged = await self._writer.run(
                lambda batch: self.settle_in_batch(batch, reservation, actual)
            )
        finally:
            self._live.discard(reservation.id)
        self.forget_unheld(reservation)
        return charged

    def forget_unheld(self, reservation: Reservation) -> None:
        """After a :meth:`settle_in_batch` (committed or failed): the reservation is closed, or
        is left to expire."""
        self._unheld.discard(reservation.id)
        self._live.discard(reservation.id)

    async def settle_in_batch(
        self, batch: Batch, reservation: Reservation, actual: Decimal
    ) -> Decimal | None:
        """:meth:`settle` as part of a group-commit operation (so a request's charge commits
        with its assets)."""
        if reservation.held:
            return await self._settle_held(batch, reservation.id, actual)
        if reservation.id not in self._unheld:
            return None
        now = time.time()
        batch.insert(
            ledger,
            _entry(
                reservation.key_id,
                "charge",
                -actual,
                reservation.id,
                reservation.request_id,
                now=now,
            ),
        )
        batch.tally(SPENDING, reservation.key_id, actual)
        return actual

    async def settle_in(
        self, conn: AsyncConnection, reservation_id: str, actual: Decimal
    ) -> Decimal | None:
        """Charge ``actual`` against the hold, in the caller's transaction. Returns what was
        charged, or ``None`` if the reservation was already settled or released."""
        self._live.discard(reservation_id)
        batch = Batch(conn)
        charged = await self._settle_held(batch, reservation_id, actual)
        await self._writer.apply(batch)
        return charged

    async def _settle_held(
        self, batch: Batch, reservation_id: str, actual: Decimal
    ) -> Decimal | None:
        now = time.time()
        row = await _close(batch.conn, reservation_id, "settled", now)
        if row is None:
            return None
        key_id, request_id, held = row["key_id"], row["request_id"], row["amount_usd"]
        charged = await self._adjust(batch.conn, key_id, held, actual, now)
        batch.insert(
            ledger,
            _entry(key_id, "release", held, reservation_id, request_id, now=now),
            _entry(key_id, "charge", -charged, reservation_id, request_id, now=now),
        )
        return charged

    async def release(self, reservation: Reservation | str) -> bool:
        """Give the whole hold back (nothing was delivered); False if already closed."""
        if isinstance(reservation, Reservation) and not reservation.held:
            if reservation.id not in self._unheld:
                return False
            self._unheld.discard(reservation.id)
            return True
        reservation_id = reservation if isinstance(reservation, str) else reservation.id
        self._live.discard(reservation_id)
        return await self._writer.run(lambda batch: self._release_held(batch, reservation_id))

    async def release_in(self, conn: AsyncConnection, reservation_id: str) -> bool:
        """:meth:`release` in the caller's transaction."""
        self._live.discard(reservation_id)
        batch = Batch(conn)
        released = await self._release_held(batch, reservation_id)
        await self._writer.apply(batch)
        return released

    async def _release_held(self, batch: Batch, reservation_id: str) -> bool:
        now = time.time()
        row = await _close(batch.conn, reservation_id, "released", now)
        if row is None:
            return False
        key_id, held = row["key_id"], row["amount_usd"]
        await self._adjust(batch.conn, key_id, held, ZERO, now)
        batch.insert(
            ledger, _entry(key_id, "release", held, reservation_id, row["request_id"], now=now)
        )
        return True

    async def renew_holds(self, now: float | None = None) -> int:
        """Extend the lease of every hold this process still answers for (a request running
        here, or a task's hold until the task settles it); returns how many."""
        now = time.time() if now is None else now
        live = list(self._live)
        if not live:
            return 0
        c = reservations.c
        async with self._engine.begin() as conn:
            result = await conn.execute(
                reservations.update()
                .where(c.id.in_(live), c.lease_owner == self.owner, c.state == "held")
                .values(lease_expires_at=now + self.lease_seconds)
                .returning(c.id)
            )
            held = set(result.scalars())
        # Closed meanwhile (a task settled on another replica): nothing left to renew.
        self._live.difference_update(set(live) - held)
        return len(held)

    async def release_expired(self, now: float | None = None) -> int:
        """Release holds whose owner stopped renewing them and that no unfinished task is
        waiting to settle (their request was cut off by a crash); returns how many."""
        now = time.time() if now is None else now
        c = reservations.c
        unfinished = sa.exists().where(
            tasks.c.reservation_id == c.id,
            tasks.c.status.in_(UNFINISHED),
        )
        expired = sa.or_(
            c.lease_expires_at < now,
            sa.and_(c.lease_expires_at.is_(None), c.created_at < now - LEGACY_HOLD_SECONDS),
        )
        query = sa.select(c.id).where(c.state == "held", expired, ~unfinished)
        async with self._engine.connect() as conn:
            stale = list((await conn.execute(query)).scalars())
        released = [await self.release(reservation_id) for reservation_id in stale]
        return sum(released)

    async def void_requests(
        self, key_id: str, request_ids: Sequence[str], *, usage_of: Sequence[str] = ()
    ) -> Decimal:
        """Give back what ``request_ids`` (of ``key_id``) were charged: requests whose answer
        never reached their client (their server stopped before recording it) and that the
        client's retry runs again. Their usage rows (and those of ``usage_of``: the tasks they
        submitted) then say nothing was charged. Once per request; returns the amount given
        back."""
        if not request_ids:
            return ZERO
        now = time.time()
        mine = sa.and_(ledger.c.key_id == key_id, ledger.c.request_id.in_(list(request_ids)))
        async with self._engine.begin() as conn:
            voided = await conn.execute(
                sa.select(ledger.c.id).where(mine, ledger.c.kind == "void").limit(1)
            )
            if voided.first() is not None:
                return ZERO
            charges = await conn.execute(
                sa.select(ledger.c.request_id, -sa.func.sum(ledger.c.amount_usd))
                .where(mine, ledger.c.kind == "charge")
                .group_by(ledger.c.request_id)
            )
            amounts = {str(request_id): Decimal(amount) for request_id, amount in charges}
            total = sum(amounts.values(), ZERO)
            if not amounts:
                return ZERO
            await conn.execute(_credit(key_id, total, now))
            entries = [
                _entry(key_id, "void", amount, request_id=request_id, now=now, note="answer lost")
                for request_id, amount in amounts.items()
            ]
            await conn.execute(ledger.insert(), entries)
            await conn.execute(
                usage.update()
                .where(
                    usage.c.key_id == key_id,
                    usage.c.request_id.in_([*amounts, *usage_of]),
                )
                .values(cost_usd=ZERO, error_code="answer_lost")
            )
        return total

    async def _adjust(
        self, conn: AsyncConnection, key_id: str, held: Decimal, actual: Decimal, now: float
    ) -> Decimal:
        """Turn a hold of ``held`` into a charge of ``actual``; more than held is charged only
        as far as the balance goes. Returns the amount charged."""
        refund = held - actual
        if refund >= 0:
            await conn.execute(_credit(key_id, refund, now))
            return actual
        extra = -refund
        limits = _limits(
            (await conn.execute(key_limits.select().where(key_limits.c.key_id == key_id)))
            .mappings()
            .first(),
            key_id,
            now,
        )
        if limits.balance_usd is not None:
            extra = min(extra, max(limits.balance_usd, ZERO))
        await conn.execute(_credit(key_id, -extra, now))
        return held + extra

    async def _why(
        self, conn: AsyncConnection, key_id: str, amount: Decimal, now: float
    ) -> tuple[str, float]:
        """Why a hold failed, and when retrying may help (a budget's next period; credit only
        after a top-up, so an hour)."""
        row = (
            (await conn.execute(key_limits.select().where(key_limits.c.key_id == key_id)))
            .mappings()
            .first()
        )
        limits = _limits(row, key_id, now)
        cost = f"${amount:.4f}"
        tomorrow = 86400 - now % 86400
        if limits.expires_at is not None and limits.expires_at <= now:
            return "this API key has expired", 3600
        if limits.balance_usd is not None and limits.balance_usd < amount:
            balance = f"${limits.balance_usd:.4f}"
            return f"this request needs {cost} but the key's balance is {balance}", 3600
        if limits.budget_daily_usd is not None:
            left = max(limits.budget_daily_usd - limits.day_spent_usd, ZERO)
            if left < amount:
                return f"this request needs {cost}; the daily budget has ${left:.4f} left", tomorrow
        return f"this request needs {cost}; the monthly budget does not cover it", tomorrow


def _entry(
    key_id: str,
    kind: str,
    amount: Decimal,
    reservation_id: str | None = None,
    request_id: str | None = None,
    *,
    note: str | None = None,
    now: float,
) -> dict[str, Any]:
    """One ledger row."""
    return {
        "key_id": key_id,
        "kind": kind,
        "amount_usd": amount,
        "reservation_id": reservation_id,
        "request_id": request_id,
        "note": note,
        "created_at": now,
    }


def _spent(
    column: sa.Column[Any], period_column: sa.Column[Any], period: str | sa.BindParameter[str]
) -> Any:
    return sa.case((period_column == period, column), else_=0)


def _hold(key_id: str, amount: Decimal, now: float) -> sa.Update:
    day, month = _day(now), _month(now)
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
                (c.day == _day(now), c.day_spent_usd - amount), else_=c.day_spent_usd
            ),
            month_spent_usd=sa.case(
                (c.month == _month(now), c.month_spent_usd - amount), else_=c.month_spent_usd
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
    day, month = _day(now), _month(now)
    await conn.execute(
        _ADD_SPENDING,
        [
            {"p_key": key_id, "p_amount": amount, "p_day": day, "p_month": month, "p_now": now}
            for key_id, amount in spent.items()
        ],
    )


async def _has_limits(conn: AsyncConnection, key_id: str) -> bool:
    query = sa.select(key_limits.c.key_id).where(key_limits.c.key_id == key_id)
    return (await conn.execute(query)).first() is not None


async def _close(
    conn: AsyncConnection, reservation_id: str, state: str, now: float
) -> sa.RowMapping | None:
    """Move a held reservation to ``state``; ``None`` when it was not held any more."""
    result = await conn.execute(
        reservations.update()
        .where(reservations.c.id == reservation_id, reservations.c.state == "held")
        .values(state=state, closed_at=now)
    )
    if not result.rowcount:
        return None
    query = reservations.select().where(reservations.c.id == reservation_id)
    return (await conn.execute(query)).mappings().one()


def _limits(row: sa.RowMapping | None, key_id: str, now: float) -> KeyLimits:
    if row is None:
        return KeyLimits(key_id)
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
        day_spent_usd=row["day_spent_usd"] if row["day"] == _day(now) else ZERO,
        month_spent_usd=row["month_spent_usd"] if row["month"] == _month(now) else ZERO,
    )
